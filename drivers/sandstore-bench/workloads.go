package main

import (
	"errors"
	"fmt"
	"os"

	sandlib "github.com/AnishMulay/sandstore/clients/library"
)

// workload is one operation's calls, as upstream's clients/bench issues them.
type workload interface {
	// setup prepares what the calls need (files, descriptors); it is not measured.
	setup() error
	// call issues worker's next call. sample is false for a call that is not a measurement of
	// the operation (read reaching the end of its file, which only starts the file over).
	call(worker int) (sample bool, err error)
	// teardown releases what setup opened (write's close flushes its buffer); not measured.
	teardown() error
}

// names are the Sand Store paths of one run. The run id keeps a second run against the same
// cluster from meeting the first one's files.
type names struct{ run string }

func (n names) writeFile(worker int) string {
	return fmt.Sprintf("/bench_%s_write_worker_%d", n.run, worker)
}
func (n names) statFile(worker int) string {
	return fmt.Sprintf("/bench_%s_stat_worker_%d", n.run, worker)
}
func (n names) createFile(worker, index int) string {
	return fmt.Sprintf("/bench_%s_create_worker_%d_%d", n.run, worker, index)
}

func newWorkload(operation string, client *sandlib.SandstoreClient, n names, opts options) workload {
	switch operation {
	case "write":
		return &writeLoad{client: client, names: n, block: make([]byte, opts.blockSize), fds: make([]int, opts.concurrency)}
	case "read":
		return &readLoad{client: client, names: n, blockSize: opts.blockSize, fill: !contains(opts.operations, "write"),
			fds: make([]int, opts.concurrency), fresh: make([]bool, opts.concurrency)}
	case "stat":
		return &statLoad{client: client, names: n, workers: opts.concurrency}
	case "create":
		return &createLoad{client: client, names: n, next: make([]int, opts.concurrency)}
	default:
		return &listLoad{client: client}
	}
}

func contains(list []string, item string) bool {
	for _, entry := range list {
		if entry == item {
			return true
		}
	}
	return false
}

// writeLoad: each worker appends block-size writes to its own file. The client library buffers
// writes up to 2 MiB per descriptor, so most calls return without an RPC (as in upstream's bench).
type writeLoad struct {
	client *sandlib.SandstoreClient
	names  names
	block  []byte
	fds    []int
}

func (l *writeLoad) setup() error {
	for i := range l.fds {
		fd, err := l.client.Open(l.names.writeFile(i), os.O_CREATE|os.O_WRONLY|os.O_TRUNC)
		if err != nil {
			return fmt.Errorf("opening %s: %w", l.names.writeFile(i), err)
		}
		l.fds[i] = fd
	}
	return nil
}

func (l *writeLoad) call(worker int) (bool, error) {
	_, err := l.client.Write(l.fds[worker], l.block)
	return true, err
}

// teardown closes the files, which flushes what the library still buffers, so that read finds
// everything write wrote.
func (l *writeLoad) teardown() error {
	var failures []error
	for i, fd := range l.fds {
		if err := l.client.Close(fd); err != nil {
			failures = append(failures, fmt.Errorf("closing %s: %w", l.names.writeFile(i), err))
		}
	}
	return errors.Join(failures...)
}

// fillBlocks is how many blocks read's setup writes per worker file when write did not run.
const fillBlocks = 64

// errEmptyFile: a file read from its start has nothing in it, so every read would be an end of file.
var errEmptyFile = errors.New("read: the file is empty (nothing was written to it)")

// readLoad: each worker reads its write file block by block, starting over at its end.
type readLoad struct {
	client    *sandlib.SandstoreClient
	names     names
	blockSize int
	fill      bool
	fds       []int
	// fresh: the worker's descriptor was just opened (nothing read from it yet).
	fresh []bool
}

func (l *readLoad) setup() error {
	for i := range l.fds {
		if l.fill {
			if err := l.fillFile(i); err != nil {
				return err
			}
		}
		if err := l.open(i); err != nil {
			return err
		}
	}
	return nil
}

func (l *readLoad) fillFile(worker int) error {
	path := l.names.writeFile(worker)
	fd, err := l.client.Open(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("creating %s to read: %w", path, err)
	}
	block := make([]byte, l.blockSize)
	for range fillBlocks {
		if _, err := l.client.Write(fd, block); err != nil {
			return fmt.Errorf("writing %s to read: %w", path, err)
		}
	}
	if err := l.client.Close(fd); err != nil {
		return fmt.Errorf("closing %s after writing it: %w", path, err)
	}
	return nil
}

func (l *readLoad) open(worker int) error {
	fd, err := l.client.Open(l.names.writeFile(worker), os.O_RDONLY)
	if err != nil {
		l.fds[worker] = -1
		return fmt.Errorf("opening %s to read: %w", l.names.writeFile(worker), err)
	}
	l.fds[worker], l.fresh[worker] = fd, true
	return nil
}

func (l *readLoad) call(worker int) (bool, error) {
	// A descriptor lost to a failed reopen is opened again by the next call, which counts as
	// that call (its failure is an error of the phase, not a silent stall).
	if l.fds[worker] < 0 {
		if err := l.open(worker); err != nil {
			return true, err
		}
	}
	data, err := l.client.Read(l.fds[worker], l.blockSize)
	if err != nil {
		return true, err
	}
	if len(data) > 0 {
		l.fresh[worker] = false
		return true, nil
	}
	// End of file (the library returns no bytes, not io.EOF): start the file over; the call
	// is not a sample, unless the file was empty from its start.
	wasFresh := l.fresh[worker]
	_ = l.client.Close(l.fds[worker])
	if err := l.open(worker); err != nil {
		return true, err
	}
	if wasFresh {
		return true, errEmptyFile
	}
	return false, nil
}

func (l *readLoad) teardown() error {
	for _, fd := range l.fds {
		if fd >= 0 {
			_ = l.client.Close(fd)
		}
	}
	return nil
}

// statLoad: each worker stats its own file, created in setup.
type statLoad struct {
	client  *sandlib.SandstoreClient
	names   names
	workers int
}

func (l *statLoad) setup() error {
	for i := range l.workers {
		fd, err := l.client.Open(l.names.statFile(i), os.O_CREATE|os.O_WRONLY)
		if err != nil {
			return fmt.Errorf("creating %s: %w", l.names.statFile(i), err)
		}
		if err := l.client.Close(fd); err != nil {
			return fmt.Errorf("closing %s: %w", l.names.statFile(i), err)
		}
	}
	return nil
}

func (l *statLoad) call(worker int) (bool, error) {
	_, err := l.client.Stat(l.names.statFile(worker))
	return true, err
}

func (l *statLoad) teardown() error { return nil }

// createLoad: each worker creates (opens with O_CREATE, then closes) a new file per call.
type createLoad struct {
	client *sandlib.SandstoreClient
	names  names
	next   []int
}

func (l *createLoad) setup() error { return nil }

func (l *createLoad) call(worker int) (bool, error) {
	path := l.names.createFile(worker, l.next[worker])
	l.next[worker]++
	fd, err := l.client.Open(path, os.O_CREATE|os.O_WRONLY)
	if err != nil {
		return true, err
	}
	return true, l.client.Close(fd)
}

func (l *createLoad) teardown() error { return nil }

// listLoad: every worker lists the root directory.
type listLoad struct{ client *sandlib.SandstoreClient }

func (l *listLoad) setup() error { return nil }

func (l *listLoad) call(int) (bool, error) {
	_, err := l.client.ListDir("/")
	return true, err
}

func (l *listLoad) teardown() error { return nil }
