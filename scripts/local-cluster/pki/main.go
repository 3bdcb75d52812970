// Command sandstore-local-pki writes the certificates and keys of one local
// sandstore-deploy test cluster (so up.sh needs neither openssl nor cfssl).
//
// Files written into -dir (existing files are kept, so it is idempotent):
//
//	ca.crt, ca.key                          cluster CA (also the client CA)
//	apiserver.crt, apiserver.key            kube-apiserver serving cert
//	admin.crt, admin.key                    CN=<name>-admin, O=system:masters
//	kube-controller-manager.crt/.key        CN=system:kube-controller-manager
//	kube-scheduler.crt/.key                 CN=system:kube-scheduler
//	apiserver-kubelet-client.crt/.key       CN=kube-apiserver-kubelet-client, O=system:masters
//	                                        (kube-apiserver -> kubelet API, i.e. kwok's server)
//	kwok-server.crt/.key                    serving cert of kwok's kubelet-like server
//	                                        (IP 127.0.0.1, DNS localhost; verified by kube-apiserver)
//	sa.key, sa.pub                          service-account token signing keys (RSA 2048)
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	dir := flag.String("dir", "", "output directory (required)")
	name := flag.String("name", "sandstore-local", "cluster name (used in certificate subjects)")
	ips := flag.String("ips", "127.0.0.1,10.96.0.1", "comma separated IP SANs of the apiserver certificate")
	dns := flag.String("dns", "localhost,kubernetes,kubernetes.default,kubernetes.default.svc,kubernetes.default.svc.cluster.local", "comma separated DNS SANs of the apiserver certificate")
	node := flag.String("node", "", "name of the real node: also write its kubelet (client and serving), kube-proxy and coredns certificates")
	nodeIP := flag.String("node-ip", "", "the real node's IP (SAN of the kubelet's serving certificate); with -node")
	flag.Parse()
	if *dir == "" {
		fail(errors.New("-dir is required"))
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		fail(err)
	}
	if (*node == "") != (*nodeIP == "") {
		fail(errors.New("-node and -node-ip go together"))
	}
	if err := run(*dir, *name, split(*ips), split(*dns), *node, *nodeIP); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "sandstore-local-pki:", err)
	os.Exit(1)
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func run(dir, name string, ips, dns []string, node, nodeIP string) error {
	caCrt, caKey := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	var ca *x509.Certificate
	var caSigner crypto.Signer
	if exists(caCrt) && exists(caKey) {
		var err error
		if ca, caSigner, err = load(caCrt, caKey); err != nil {
			return err
		}
	} else {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := template(pkix.Name{CommonName: name + "-ca"}, 10)
		tmpl.IsCA = true
		tmpl.BasicConstraintsValid = true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			return err
		}
		if ca, err = x509.ParseCertificate(der); err != nil {
			return err
		}
		caSigner = key
		if err := write(caCrt, caKey, der, key); err != nil {
			return err
		}
	}

	var ipAddrs []net.IP
	for _, s := range ips {
		ip := net.ParseIP(s)
		if ip == nil {
			return fmt.Errorf("bad IP SAN %q", s)
		}
		ipAddrs = append(ipAddrs, ip)
	}
	leaves := []struct {
		file    string
		subject pkix.Name
		server  bool
		ips     []net.IP // server certs only
		dns     []string
	}{
		{"apiserver", pkix.Name{CommonName: "kube-apiserver"}, true, ipAddrs, dns},
		{"admin", pkix.Name{CommonName: name + "-admin", Organization: []string{"system:masters"}}, false, nil, nil},
		{"kube-controller-manager", pkix.Name{CommonName: "system:kube-controller-manager"}, false, nil, nil},
		{"kube-scheduler", pkix.Name{CommonName: "system:kube-scheduler"}, false, nil, nil},
		{"apiserver-kubelet-client", pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}}, false, nil, nil},
		// kwok's kubelet-like server is reached by kube-apiserver at the nodes'
		// address 127.0.0.1 (see nodes.yaml).
		{"kwok-server", pkix.Name{CommonName: "kwok-server", Organization: []string{"system:nodes"}}, true, []net.IP{net.IPv4(127, 0, 0, 1)}, []string{"localhost"}},
	}
	if node != "" {
		ip := net.ParseIP(nodeIP)
		if ip == nil {
			return fmt.Errorf("bad -node-ip %q", nodeIP)
		}
		leaves = append(leaves, []struct {
			file    string
			subject pkix.Name
			server  bool
			ips     []net.IP
			dns     []string
		}{
			// The Node authorizer and NodeRestriction know a kubelet by this subject.
			{"kubelet", pkix.Name{CommonName: "system:node:" + node, Organization: []string{"system:nodes"}}, false, nil, nil},
			// kube-apiserver verifies the kubelet's serving certificate against the cluster CA
			// (--kubelet-certificate-authority), so it cannot be the kubelet's self-signed one.
			{"kubelet-server", pkix.Name{CommonName: node, Organization: []string{"system:nodes"}}, true, []net.IP{ip}, []string{node}},
			// Bound to the built-in ClusterRole system:node-proxier by default RBAC.
			{"kube-proxy", pkix.Name{CommonName: "system:kube-proxy"}, false, nil, nil},
			// Bound to a read-only ClusterRole by up.sh (node-rbac.yaml).
			{"coredns", pkix.Name{CommonName: "system:coredns"}, false, nil, nil},
			// The NetworkPolicy agent; bound to its read-only ClusterRole by up.sh (node-rbac.yaml).
			{"kube-router", pkix.Name{CommonName: "system:kube-router"}, false, nil, nil},
		}...)
	}
	for _, l := range leaves {
		crt, keyFile := filepath.Join(dir, l.file+".crt"), filepath.Join(dir, l.file+".key")
		if exists(crt) && exists(keyFile) {
			continue
		}
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		tmpl := template(l.subject, 10)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		if l.server {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			tmpl.IPAddresses = l.ips
			tmpl.DNSNames = l.dns
		} else {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caSigner)
		if err != nil {
			return err
		}
		if err := write(crt, keyFile, der, key); err != nil {
			return err
		}
	}

	saKey, saPub := filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if !exists(saKey) || !exists(saPub) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return err
		}
		pub, err := x509.MarshalPKIXPublicKey(key.Public())
		if err != nil {
			return err
		}
		if err := os.WriteFile(saKey, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(saPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func template(subject pkix.Name, years int) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(years, 0, 0),
	}
}

func write(crtPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(crtPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func load(crtPath, keyPath string) (*x509.Certificate, crypto.Signer, error) {
	crtPEM, err := os.ReadFile(crtPath)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode(crtPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, fmt.Errorf("cannot decode %s / %s", crtPath, keyPath)
	}
	crt, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	return crt, key, nil
}
