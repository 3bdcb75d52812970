// Command sandstore-local-nodeproxy makes loopback services of the host
// reachable on the loopback of the real node's network namespace.
//
// The control plane and the image registry listen on the host's 127.0.0.1
// only (nothing of the local cluster is reachable from outside the machine).
// The real node (containerd, kubelet, kube-proxy, CoreDNS) runs in a network
// namespace of its own, where 127.0.0.1 is the namespace's own loopback. This
// proxy opens a listening socket inside that namespace for each forward and
// relays every connection to the same (or another) address on the host's
// loopback, so the node uses exactly the addresses the operator uses:
// https://127.0.0.1:<apiserver port> and localhost:5000 (the registry).
//
//	sandstore-local-nodeproxy -netns /run/netns/NAME \
//	    -forward 127.0.0.1:20000=127.0.0.1:20000 -forward 127.0.0.1:5000=127.0.0.1:5000
//
// A socket stays in the namespace it was created in, so only the listen()
// happens inside the node's namespace; connections to the targets are made
// from the host's namespace, where the process runs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type forward struct{ listen, target string }

type forwards []forward

func (f *forwards) String() string { return fmt.Sprint(*f) }
func (f *forwards) Set(v string) error {
	l, t, ok := strings.Cut(v, "=")
	if !ok || l == "" || t == "" {
		return fmt.Errorf("want LISTEN=TARGET (host:port=host:port), got %q", v)
	}
	*f = append(*f, forward{l, t})
	return nil
}

func main() {
	netnsPath := flag.String("netns", "", "path of the node's network namespace (e.g. /run/netns/sandstore-local)")
	var fwds forwards
	flag.Var(&fwds, "forward", "LISTEN=TARGET: listen on LISTEN inside the namespace, relay to TARGET on the host (repeatable)")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	if *netnsPath == "" || len(fwds) == 0 {
		log.Fatal("-netns and at least one -forward are required")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()

	var wg sync.WaitGroup
	for _, f := range fwds {
		ln, err := listenIn(*netnsPath, f.listen)
		if err != nil {
			log.Fatalf("listening on %s in %s: %v", f.listen, *netnsPath, err)
		}
		log.Printf("forwarding %s (in %s) to %s (host)", f.listen, *netnsPath, f.target)
		wg.Add(1)
		go func(ln net.Listener, target string) {
			defer wg.Done()
			serve(ctx, ln, target)
		}(ln, f.target)
	}
	<-ctx.Done()
	log.Print("shutting down")
	wg.Wait()
}

// listenIn creates a TCP listener inside the network namespace at nsPath. It
// runs on a goroutine locked to its OS thread and never unlocks it: the thread
// that switched namespaces exits with the goroutine instead of returning to
// the scheduler, so no other goroutine ever runs in the node's namespace.
func listenIn(nsPath, addr string) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(nsPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, fmt.Errorf("setns: %w", err)}
			return
		}
		ln, err := net.Listen("tcp", addr)
		ch <- result{ln, err}
	}()
	r := <-ch
	return r.ln, r.err
}

func serve(ctx context.Context, ln net.Listener, target string) {
	go func() { <-ctx.Done(); _ = ln.Close() }()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			log.Printf("accept on %s: %v", ln.Addr(), err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go relay(c, target)
	}
}

func relay(in net.Conn, target string) {
	defer in.Close()
	out, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		log.Printf("dialing %s for %s: %v", target, in.RemoteAddr(), err)
		return
	}
	defer out.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite() // pass the half-close on (HTTP/1.0 clients, watches ending)
		}
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	<-done
}
