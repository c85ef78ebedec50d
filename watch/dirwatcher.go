package watch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Debounce defaults for DirWatcher.
const (
	DefaultHoldOff = 100 * time.Millisecond
	DefaultMaxWait = 10 * time.Second
)

// DirWatcher serves a folder of manifests (directory mode): it reloads the whole folder
// after each burst of file changes and emits one new Input per reload. See the package
// comment for how rejected objects are handled.
type DirWatcher struct {
	dir              string
	log              *slog.Logger
	holdOff, maxWait time.Duration
	// secretUses, when set, are the namespaces whose Secrets serve gateways and
	// DestinationRule clients (Input.SetSecretUses); unset, every Secret serves both.
	secretUses *[2][]string

	mu      sync.Mutex
	current *Input
	watchMu sync.Mutex
	watched map[string]bool // guarded by watchMu
	decoded decodeCache     // only touched by Run's goroutine
}

// DirOption configures a DirWatcher.
type DirOption func(*DirWatcher)

// WithDebounce sets the hold-off after the last change and the longest a burst of
// changes may delay a reload (defaults DefaultHoldOff and DefaultMaxWait).
func WithDebounce(holdOff, maxWait time.Duration) DirOption {
	return func(w *DirWatcher) { w.holdOff, w.maxWait = holdOff, maxWait }
}

// WithSecretUses restricts Secrets as Kubernetes mode does: those of gateway serve
// Gateway credentialName, those of client DestinationRule credentialName, others
// nothing (Input.SetSecretUses). Without it every Secret of the folder serves both.
func WithSecretUses(gateway, client []string) DirOption {
	return func(w *DirWatcher) { w.secretUses = &[2][]string{gateway, client} }
}

// NewDirWatcher watches dir. A nil log discards logs.
func NewDirWatcher(dir string, log *slog.Logger, opts ...DirOption) *DirWatcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &DirWatcher{dir: dir, log: log, holdOff: DefaultHoldOff, maxWait: DefaultMaxWait, watched: map[string]bool{}}
	for _, o := range opts {
		o(w)
	}
	return w
}

// Run loads the folder, sends the first Input on out, then sends a new Input each time
// a reload changes the Version or the Diagnostics. Sends block: the receiver sees every
// snapshot in order. Run returns nil when ctx ends, or an error when the folder cannot
// be watched or its first load fails. Call Run once per DirWatcher.
func (w *DirWatcher) Run(ctx context.Context, out chan<- *Input) error {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", w.dir, err)
	}
	defer fw.Close()
	if err := w.syncWatches(fw); err != nil {
		return err
	}
	first, err := w.load(nil)
	if err != nil {
		return err
	}
	if !send(ctx, out, first) {
		return nil
	}

	changes := make(chan struct{}, 1)
	go w.forward(ctx, fw, changes)
	err = DebounceLoop(ctx, w.holdOff, w.maxWait, changes, func() bool {
		if err := w.syncWatches(fw); err != nil {
			w.log.Error("watch directories", "dir", w.dir, "err", err)
		}
		in, err := w.load(w.Current())
		if err != nil {
			w.log.Error("reload manifests; keeping the last good configuration", "dir", w.dir, "err", err)
			return true
		}
		return in == nil || send(ctx, out, in)
	})
	if errors.Is(err, ErrChangesClosed) {
		return errors.New("watch: file watcher closed")
	}
	return err
}

// forward turns file events and watcher errors into change notifications for
// DebounceLoop, and closes changes when the watcher ends.
func (w *DirWatcher) forward(ctx context.Context, fw *fsnotify.Watcher, changes chan<- struct{}) {
	defer close(changes)
	notify := func() {
		select {
		case changes <- struct{}{}:
		default: // a burst is already pending
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-fw.Events:
			if !ok {
				return
			}
			w.log.Debug("manifest change", "op", ev.Op.String(), "path", ev.Name)
			if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
				w.watchMu.Lock()
				delete(w.watched, ev.Name) // a watched directory went away: watch it anew if it returns
				w.watchMu.Unlock()
			}
			notify()
		case err, ok := <-fw.Errors:
			if !ok {
				return
			}
			w.log.Warn("file watcher error; reloading", "dir", w.dir, "err", err)
			notify()
		}
	}
}

// Current returns the last Input Run produced, or nil before the first load.
func (w *DirWatcher) Current() *Input {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.current
}

// Diagnostics returns the problems of the current configuration, for status.
func (w *DirWatcher) Diagnostics() []Diagnostic {
	if in := w.Current(); in != nil {
		return slices.Clone(in.Diagnostics)
	}
	return nil
}

// load reads the folder and builds a new Input on top of prev (last good versions of
// rejected objects). It returns nil when nothing changed.
func (w *DirWatcher) load(prev *Input) (*Input, error) {
	if w.decoded.files == nil {
		w.decoded.files = map[string]decodedFile{}
	}
	objs, diags, err := decodeDir(w.dir, &w.decoded)
	if err != nil {
		return nil, err
	}
	objs, diags = RetainLastGood(prev, objs, diags)
	in := Build(objs, diags)
	if w.secretUses != nil {
		in.SetSecretUses(w.secretUses[0], w.secretUses[1])
	}
	if Unchanged(prev, in) {
		return nil, nil
	}
	w.logChanges(in)
	w.mu.Lock()
	w.current = in
	w.mu.Unlock()
	return in, nil
}

// logChanges logs the new Input; its diagnostics are logged by whoever serves it
// (wardend's xDS server), once, with translation's.
func (w *DirWatcher) logChanges(in *Input) {
	w.log.Info("configuration loaded", "dir", w.dir, "version", in.Version,
		"objects", len(in.objects), "diagnostics", len(in.Diagnostics),
		"rejected", len(in.Rejected), "stale", len(in.Stale))
}

// syncWatches watches dir and every subdirectory DecodeDir reads, and forgets the
// ones that are gone. Watching directories (not files) catches editors' rename-into-
// place and the symlink swap of Kubernetes ConfigMap mounts.
func (w *DirWatcher) syncWatches(fw *fsnotify.Watcher) error {
	dirs, err := manifestDirs(w.dir)
	if err != nil {
		return fmt.Errorf("watch %s: %w", w.dir, err)
	}
	w.watchMu.Lock()
	defer w.watchMu.Unlock()
	now := make(map[string]bool, len(dirs))
	for i, d := range dirs {
		now[d] = true
		if w.watched[d] {
			continue
		}
		if err := fw.Add(d); err != nil {
			if i == 0 {
				return fmt.Errorf("watch %s: %w", d, err)
			}
			w.log.Warn("watch directory", "dir", d, "err", err)
			continue
		}
		w.watched[d] = true
	}
	for d := range w.watched {
		if !now[d] {
			_ = fw.Remove(d) // already gone with the directory
			delete(w.watched, d)
		}
	}
	return nil
}

func send(ctx context.Context, out chan<- *Input, in *Input) bool {
	select {
	case out <- in:
		return true
	case <-ctx.Done():
		return false
	}
}
