package csvdrop

import (
	"os"
	"path/filepath"
	"strings"
	"time"
)

// An export job that pauses longer than settle_time has its file taken half written. A job
// that writes through the handle it opened goes on writing into the file in processed/, and
// those rows would never be read. So a file is watched for WatchTime after it was taken: if
// its size or modification time changes, it is moved back into the drop folder and read
// again whole, once it settles; the rows already stored are dropped as duplicates (their ids
// derive from their content or revision), and the new ones are stored. Nothing is dropped in
// silence: each such file is counted (file_changed) and logged. docs/adapters.md, "Safe
// export settings", says how an export avoids it.

// takenFile is a file moved to processed/ and still watched.
type takenFile struct {
	name  string    // its name in the drop folder
	size  int64     // as it was read
	mtime time.Time // as it was read
	until time.Time // when the watch ends
}

// watch starts watching a file just moved to processed/, as it was read.
func (a *Adapter) watch(name string, read os.FileInfo) {
	if a.cfg.WatchTime <= 0 {
		return
	}
	a.taken[filepath.Join(a.cfg.ProcessedDir, name)] = takenFile{name: name, size: read.Size(), mtime: read.ModTime(),
		until: a.deps.Now().Add(a.cfg.WatchTime)}
}

// watchTaken checks the watched files once. A file that changed is moved back into the drop
// folder (under its name, or its name and the time when another file has taken it), and
// its next read bypasses the done marker: its writer already gave one and then wrote on.
func (a *Adapter) watchTaken(now time.Time) {
	for path, tf := range a.taken {
		info, err := os.Stat(path)
		switch {
		case err != nil || now.After(tf.until):
			delete(a.taken, path) // gone (an operator moved it), or watched long enough
			continue
		case info.Size() == tf.size && info.ModTime().Equal(tf.mtime):
			continue
		}
		delete(a.taken, path)
		back := tf.name
		if _, err := os.Lstat(filepath.Join(a.cfg.Dir, back)); err == nil {
			ext := filepath.Ext(back)
			back = strings.TrimSuffix(back, ext) + "." + now.UTC().Format("20060102T150405.000000000") + ext
		}
		a.deps.CountRejected(ReasonFileChanged)
		if err := os.Rename(path, filepath.Join(a.cfg.Dir, back)); err != nil {
			a.deps.Logger.Error().Err(err).Str("file", tf.name).
				Msg("file changed after it was taken and could not be moved back to be read again; move it into the drop folder by hand")
			continue
		}
		syncDir(a.cfg.Dir)
		a.reread[back] = true
		a.deps.Logger.Warn().Str("file", tf.name).Str("as", back).Int64("size_read", tf.size).Int64("size_now", info.Size()).
			Msg("file changed after it was taken: its writer was not done; moved back to be read again (see csvdrop.done_marker)")
	}
}
