// Command sandstore-role-label keeps a label on its own pod that says what
// Sand Store's Raft node in that pod last became: the image
// localhost:5000/sandstore-role-label (images.sh), run as a sidecar of every
// Sand Store pod of a profile with a leader Service (docs/leader-access.md).
// The leader Service selects the pod labelled leader, so a client's one seed
// is answered by the leader, whose topology answer is then right.
//
//	sandstore-role-label -log <file> -label <key>   (POD_NAME, POD_NAMESPACE from the downward API)
//
// It reads Sand Store's event log from its start (a restarted sidecar
// recovers the current role from it), then follows it; at each "Became
// Leader" or "Became Follower" it sets the label to leader or follower with a
// JSON merge patch of its own pod, retrying until the API server accepts it.
// Before any role change is logged the pod is a follower: Raft starts so.
//
// The API client is the in-cluster one client-go uses (HTTPS to the
// `kubernetes` Service, the kubelet-mounted CA verified, the pod's
// ServiceAccount token as bearer), written with the standard library only:
// the node image has no HTTPS client that can PATCH (busybox's wget cannot).
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

const saDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// How often the log is read again at its end (a file has no watch in the
// standard library), and how long to wait before retrying a refused patch.
const (
	followEvery = 200 * time.Millisecond
	retryEvery  = time.Second
)

func main() {
	logFile := flag.String("log", "", "Sand Store's event log file")
	label := flag.String("label", "", "the label key to keep on the pod")
	flag.Parse()
	pod, namespace := os.Getenv("POD_NAME"), os.Getenv("POD_NAMESPACE")
	if *logFile == "" || *label == "" || pod == "" || namespace == "" {
		fmt.Fprintln(os.Stderr, "sandstore-role-label: -log, -label, POD_NAME and POD_NAMESPACE are required")
		os.Exit(2)
	}
	api, err := inClusterClient()
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandstore-role-label: %v\n", err)
		os.Exit(1)
	}
	url := fmt.Sprintf("%s/api/v1/namespaces/%s/pods/%s", api.server, namespace, pod)
	roles := make(chan string, 1)
	go follow(*logFile, roles)
	current := ""
	for role := range roles {
		if role == current {
			continue
		}
		for {
			if err := api.patchLabel(url, *label, role); err != nil {
				fmt.Fprintf(os.Stderr, "sandstore-role-label: %s=%s: %v; retrying\n", *label, role, err)
				time.Sleep(retryEvery)
				continue
			}
			break
		}
		fmt.Printf("%s %s=%s\n", time.Now().UTC().Format(time.RFC3339), *label, role)
		current = role
	}
}

// follow sends the role of every role change in the file, the first once the
// file's existing lines are read (follower when none), then each as logged.
func follow(path string, roles chan<- string) {
	var f *os.File
	for {
		var err error
		if f, err = os.Open(path); err == nil {
			break
		}
		time.Sleep(followEvery) // Sand Store creates the file once it starts
	}
	r := bufio.NewReader(f)
	role, partial, caughtUp := "follower", "", false
	for {
		chunk, err := r.ReadString('\n')
		partial += chunk
		if err == nil {
			if next := roleOf(partial); next != "" {
				role = next
				if caughtUp {
					roles <- role
				}
			}
			partial = ""
			continue
		}
		if !errors.Is(err, io.EOF) {
			fmt.Fprintf(os.Stderr, "sandstore-role-label: reading %s: %v\n", path, err)
			os.Exit(1)
		}
		if !caughtUp {
			caughtUp = true
			roles <- role
		}
		time.Sleep(followEvery)
	}
}

func roleOf(line string) string {
	switch {
	case strings.Contains(line, "Became Leader"):
		return "leader"
	case strings.Contains(line, "Became Follower"):
		return "follower"
	}
	return ""
}

type client struct {
	server string
	token  string
	http   *http.Client
}

func inClusterClient() (*client, error) {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, errors.New("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: not in a pod")
	}
	ca, err := os.ReadFile(saDir + "/ca.crt")
	if err != nil {
		return nil, fmt.Errorf("the ServiceAccount's CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s/ca.crt holds no PEM certificate", saDir)
	}
	token, err := os.ReadFile(saDir + "/token")
	if err != nil {
		return nil, fmt.Errorf("the ServiceAccount's token: %w", err)
	}
	return &client{
		server: "https://" + host + ":" + port,
		token:  strings.TrimSpace(string(token)),
		http: &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}},
		},
	}, nil
}

func (c *client) patchLabel(url, key, value string) error {
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]string{key: value}}})
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPatch, url, strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	// Projected tokens are rotated in place: read the current one for each request.
	if token, err := os.ReadFile(saDir + "/token"); err == nil {
		c.token = strings.TrimSpace(string(token))
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/merge-patch+json")
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("PATCH %s: %s: %s", url, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}
