// Command kube-api-probe is an in-cluster client of the Kubernetes API, as
// small as one can be: the image localhost:5000/kube-api-probe (images.sh)
// with which the e2e suite shows that a pod on the real node reaches the API
// server through the `kubernetes` Service, as client-go's in-cluster
// configuration does: HTTPS to the server, the server's certificate verified
// against the CA the kubelet mounts, the pod's ServiceAccount token as bearer.
//
//	kube-api-probe [-server https://kubernetes.default.svc]
//
// It asks two things: GET /version (readable without credentials) and POST
// a SelfSubjectReview (authentication.k8s.io/v1: "who am I"), whose answer
// names the ServiceAccount only when the token was sent and accepted. It
// prints one JSON line, {"version":..., "user":...} or {"error":...}, on
// stdout and into /dev/termination-log (the pod's status then carries it),
// and exits 0 only when both requests succeeded.
//
// Only the standard library: no image on this offline machine has an HTTPS
// client that verifies certificates (busybox's wget does not).
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// Where the kubelet mounts a pod's ServiceAccount credentials.
const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

type result struct {
	Version string `json:"version,omitempty"`
	User    string `json:"user,omitempty"`
	Error   string `json:"error,omitempty"`
}

func main() {
	server := flag.String("server", "https://kubernetes.default.svc", "the API server's URL")
	flag.Parse()
	r, err := probe(strings.TrimSuffix(*server, "/"))
	if err != nil {
		r = result{Error: err.Error()}
	}
	line, _ := json.Marshal(r)
	fmt.Println(string(line))
	// Best effort: the kubelet makes the file; outside a pod it is not there.
	_ = os.WriteFile("/dev/termination-log", line, 0o644)
	if err != nil {
		os.Exit(1)
	}
}

func probe(server string) (result, error) {
	caPEM, err := os.ReadFile(saDir + "/ca.crt")
	if err != nil {
		return result{}, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return result{}, fmt.Errorf("no certificate in %s/ca.crt", saDir)
	}
	token, err := os.ReadFile(saDir + "/token")
	if err != nil {
		return result{}, err
	}
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}},
	}
	do := func(method, path string, body []byte, into any) error {
		req, err := http.NewRequest(method, server+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(token)))
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		text, err := io.ReadAll(res.Body)
		if err != nil {
			return err
		}
		if res.StatusCode/100 != 2 {
			return fmt.Errorf("%s %s: %s: %s", method, path, res.Status, bytes.TrimSpace(text))
		}
		return json.Unmarshal(text, into)
	}

	var version struct {
		GitVersion string `json:"gitVersion"`
	}
	if err := do(http.MethodGet, "/version", nil, &version); err != nil {
		return result{}, err
	}
	var review struct {
		Status struct {
			UserInfo struct {
				Username string `json:"username"`
			} `json:"userInfo"`
		} `json:"status"`
	}
	ssr := []byte(`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`)
	if err := do(http.MethodPost, "/apis/authentication.k8s.io/v1/selfsubjectreviews", ssr, &review); err != nil {
		return result{}, err
	}
	return result{Version: version.GitVersion, User: review.Status.UserInfo.Username}, nil
}
