package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// options is what the driver was asked to do, every value checked.
type options struct {
	seeds       []string
	durationS   float64
	warmupS     float64
	concurrency int
	blockSize   int
	operations  []string
	out         string
}

// canonicalOperations are upstream's phases in upstream's order; a run always follows it, so
// that read finds write's files and two runs with the same --ops measure the same sequence.
var canonicalOperations = []string{"write", "read", "stat", "create", "listdir"}

const (
	maxPhaseSeconds = 86400
	maxConcurrency  = 1024
	maxBlockSize    = 64 << 20
)

const usageText = `usage: sandstore-bench --seeds host:port,... --out <dir> [flags]

  --seeds        Sand Store addresses, host:port,... (else SANDSTORE_SEEDS)
  --out          directory for results.csv, summary.json and <operation>.hgrm (created if missing)
  --duration     seconds measured per operation, > 0 and <= 86400 (default 30)
  --warmup       seconds of discarded calls before each measured window, >= 0 (default 5)
  --concurrency  workers, each a closed loop, 1..1024 (default 4)
  --block-size   bytes per write and read call, 1..67108864 (default 4096)
  --ops          comma list of write,read,stat,create,listdir (default all, always in that order)
`

// usageError is a refused flag value: one line, exit code 2, nothing was contacted.
type usageError struct{ message string }

func (e usageError) Error() string { return e.message }

func invalid(name, value, accepted string) error {
	return usageError{fmt.Sprintf("invalid --%s %q: expected %s", name, value, accepted)}
}

// parseOptions reads the command line (and SANDSTORE_SEEDS when --seeds is absent). Every flag
// is read as text and checked here, so that each refusal names the flag, the value and the form.
func parseOptions(args []string, getenv func(string) string) (options, error) {
	flags := flag.NewFlagSet("sandstore-bench", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	seeds := flags.String("seeds", "", "")
	duration := flags.String("duration", "30", "")
	warmup := flags.String("warmup", "5", "")
	concurrency := flags.String("concurrency", "4", "")
	blockSize := flags.String("block-size", "4096", "")
	operations := flags.String("ops", strings.Join(canonicalOperations, ","), "")
	out := flags.String("out", "", "")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return options{}, err
		}
		return options{}, usageError{fmt.Sprintf("%v: the accepted flags are --seeds, --out, --duration, --warmup, --concurrency, --block-size and --ops (see --help)", err)}
	}
	if flags.NArg() > 0 {
		return options{}, usageError{fmt.Sprintf("unexpected argument %q: sandstore-bench takes only flags, e.g. --seeds host:port --out <dir>", flags.Arg(0))}
	}
	seedsGiven := false
	flags.Visit(func(f *flag.Flag) { seedsGiven = seedsGiven || f.Name == "seeds" })

	var opts options
	var err error
	if opts.seeds, err = parseSeeds(*seeds, seedsGiven, getenv("SANDSTORE_SEEDS")); err != nil {
		return options{}, err
	}
	if opts.durationS, err = parseSeconds("duration", *duration, false); err != nil {
		return options{}, err
	}
	if opts.warmupS, err = parseSeconds("warmup", *warmup, true); err != nil {
		return options{}, err
	}
	if opts.concurrency, err = parseBoundedInt("concurrency", *concurrency, 1, maxConcurrency, "a whole number of workers from 1 to 1024"); err != nil {
		return options{}, err
	}
	if opts.blockSize, err = parseBoundedInt("block-size", *blockSize, 1, maxBlockSize, "a whole number of bytes from 1 to 67108864 (64 MiB)"); err != nil {
		return options{}, err
	}
	if opts.operations, err = parseOperations(*operations); err != nil {
		return options{}, err
	}
	if opts.out, err = checkOutDir(*out); err != nil {
		return options{}, err
	}
	return opts, nil
}

func parseSeeds(flagValue string, given bool, fromEnv string) ([]string, error) {
	value, name := flagValue, "seeds"
	if !given {
		if strings.TrimSpace(fromEnv) == "" {
			return nil, usageError{"missing --seeds: expected host:port,... (or SANDSTORE_SEEDS in the environment)"}
		}
		value, name = fromEnv, "seeds (from SANDSTORE_SEEDS)"
	}
	var seeds []string
	for _, seed := range strings.Split(value, ",") {
		seed = strings.TrimSpace(seed)
		host, port, err := net.SplitHostPort(seed)
		number, portErr := strconv.Atoi(port)
		if err != nil || host == "" || portErr != nil || number < 1 || number > 65535 {
			return nil, invalid(name, value, "a comma-separated list of host:port, e.g. 127.0.0.1:9080,127.0.0.1:9081")
		}
		seeds = append(seeds, seed)
	}
	return seeds, nil
}

func parseSeconds(name, value string, zeroAllowed bool) (float64, error) {
	accepted := "seconds, a number > 0 and <= 86400 (decimals allowed, e.g. 30 or 2.5)"
	if zeroAllowed {
		accepted = "seconds, a number >= 0 and <= 86400 (decimals allowed, e.g. 5 or 0)"
	}
	seconds, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
	if err != nil || math.IsNaN(seconds) || seconds < 0 || (seconds == 0 && !zeroAllowed) || seconds > maxPhaseSeconds {
		return 0, invalid(name, value, accepted)
	}
	return seconds, nil
}

func parseBoundedInt(name, value string, lowest, highest int, accepted string) (int, error) {
	number, err := strconv.Atoi(strings.TrimSpace(value))
	if err != nil || number < lowest || number > highest {
		return 0, invalid(name, value, accepted)
	}
	return number, nil
}

// parseOperations returns the selected operations in canonical order.
func parseOperations(value string) ([]string, error) {
	accepted := "a comma list of distinct operations from write,read,stat,create,listdir"
	selected := map[string]bool{}
	for _, name := range strings.Split(value, ",") {
		name = strings.TrimSpace(name)
		if !isOperation(name) || selected[name] {
			return nil, invalid("ops", value, accepted)
		}
		selected[name] = true
	}
	var ordered []string
	for _, name := range canonicalOperations {
		if selected[name] {
			ordered = append(ordered, name)
		}
	}
	return ordered, nil
}

func isOperation(name string) bool {
	for _, known := range canonicalOperations {
		if name == known {
			return true
		}
	}
	return false
}

// checkOutDir refuses a directory that already holds a run's records: one run, one folder,
// never overwritten. Creating the directory is left to the run (a failure there is exit 1).
func checkOutDir(value string) (string, error) {
	if strings.TrimSpace(value) == "" {
		return "", usageError{"missing --out: expected a directory for the results (created if missing)"}
	}
	info, err := os.Stat(value)
	if errors.Is(err, os.ErrNotExist) {
		return value, nil
	}
	if err != nil || !info.IsDir() {
		return "", invalid("out", value, "a directory (new, or without results.csv and summary.json)")
	}
	for _, record := range []string{"results.csv", "summary.json"} {
		if _, err := os.Stat(filepath.Join(value, record)); err == nil {
			return "", usageError{fmt.Sprintf("invalid --out %q: it already holds %s; expected a new or empty directory (each run keeps its own)", value, record)}
		}
	}
	return value, nil
}
