// Command tlogverify checks a newsroom-provenance transparency log with Go's sumdb packages
// (golang.org/x/mod/sumdb/tlog and .../note), an implementation the project did not write.
//
//	tlogverify audit VKEY DIR                         every entry of a copy of the log (C2SP tlog-tiles)
//	tlogverify inclusion VKEY CHECKPOINT EVIDENCE     one entry's inclusion proof ({"index","entry","proof"})
//	tlogverify consistency VKEY OLD NEW PROOF         that NEW extends OLD ({"proof": [...]})
//
// It prints one line and exits 0 when everything checks, 1 when the log misbehaves.
package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

const height = 8

// maxDelay and skew are the log's stated time rules (provenance.transparency).
const maxDelay = time.Hour
const skew = 5 * time.Second

func fail(format string, args ...interface{}) {
	fmt.Printf("FAIL "+format+"\n", args...)
	os.Exit(1)
}

func readFile(path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	return data
}

// checkpoint opens a signed checkpoint: origin, size, base64 root hash.
func checkpoint(vkey string, msg []byte) (string, tlog.Tree) {
	verifier, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		fail("verifier key: %v", err)
	}
	n, err := note.Open(msg, note.VerifierList(verifier))
	if err != nil {
		fail("checkpoint signature: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	if len(lines) < 4 || lines[0] != verifier.Name() {
		fail("checkpoint: not of the log %s", verifier.Name())
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 {
		fail("checkpoint size %q", lines[1])
	}
	raw, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(raw) != tlog.HashSize {
		fail("checkpoint root %q", lines[2])
	}
	var root tlog.Hash
	copy(root[:], raw)
	return lines[0], tlog.Tree{N: size, Hash: root}
}

// c2spPath is a tile's path in C2SP tlog-tiles (no height element; entry bundles under "entries").
func c2spPath(t tlog.Tile) string {
	n := fmt.Sprintf("%03d", t.N)
	for len(n)%3 != 0 {
		n = "0" + n
	}
	var groups []string
	for i := 0; i < len(n); i += 3 {
		groups = append(groups, n[i:i+3])
	}
	for i := 0; i < len(groups)-1; i++ {
		groups[i] = "x" + groups[i]
	}
	level := strconv.Itoa(t.L)
	if t.L < 0 {
		level = "entries"
	}
	p := "tile/" + level + "/" + strings.Join(groups, "/")
	if t.W != 1<<t.H {
		p += ".p/" + strconv.Itoa(t.W)
	}
	return p
}

type dirTiles struct{ dir string }

func (d dirTiles) Height() int { return height }
func (d dirTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		data, err := os.ReadFile(filepath.Join(d.dir, filepath.FromSlash(c2spPath(t))))
		if err != nil {
			return nil, err
		}
		out[i] = data
	}
	return out, nil
}
func (d dirTiles) SaveTiles(tiles []tlog.Tile, data [][]byte) {}

func entries(bundle []byte) ([][]byte, error) {
	var out [][]byte
	for len(bundle) > 0 {
		if len(bundle) < 2 {
			return nil, errors.New("truncated bundle")
		}
		n := int(bundle[0])<<8 | int(bundle[1])
		if len(bundle) < 2+n {
			return nil, errors.New("truncated bundle")
		}
		out = append(out, bundle[2:2+n])
		bundle = bundle[2+n:]
	}
	return out, nil
}

type record struct {
	Index    *int64 `json:"index"`
	Event    string `json:"event"`
	At       string `json:"at"`
	LoggedAt string `json:"logged_at"`
}

const timeLayout = "2006-01-02T15:04:05.000000Z"

func audit(vkey, dir string) {
	origin, tree := checkpoint(vkey, readFile(filepath.Join(dir, "checkpoint")))
	reader := tlog.TileHashReader(tree, dirTiles{dir})
	root, err := tlog.TreeHash(tree.N, reader) // every tile read is authenticated against the signed root
	if err != nil {
		fail("tree: %v", err)
	}
	if root != tree.Hash {
		fail("tree: the tiles do not hash to the checkpoint's root")
	}
	var last time.Time
	for start := int64(0); start < tree.N; start += 1 << height {
		width := tree.N - start
		if width > 1<<height {
			width = 1 << height
		}
		tile := tlog.Tile{H: height, L: -1, N: start >> height, W: int(width)}
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(c2spPath(tile))))
		if err != nil {
			fail("%v", err)
		}
		list, err := entries(data)
		if err != nil || int64(len(list)) != width {
			fail("entry bundle %s: %d entries, %v", c2spPath(tile), len(list), err)
		}
		indexes := make([]int64, width)
		for i := range indexes {
			indexes[i] = tlog.StoredHashIndex(0, start+int64(i))
		}
		hashes, err := reader.ReadHashes(indexes)
		if err != nil {
			fail("leaf hashes: %v", err)
		}
		for i, entry := range list {
			index := start + int64(i)
			if tlog.RecordHash(entry) != hashes[i] {
				fail("entry %d: altered (its hash is not in the tree)", index)
			}
			var r record
			if err := json.Unmarshal(entry, &r); err != nil || r.Index == nil {
				fail("entry %d: not a log entry", index)
			}
			if *r.Index != index {
				fail("entry %d: names index %d (re-ordered)", index, *r.Index)
			}
			at, err1 := time.Parse(timeLayout, r.At)
			logged, err2 := time.Parse(timeLayout, r.LoggedAt)
			if err1 != nil || err2 != nil {
				fail("entry %d: times %q %q", index, r.At, r.LoggedAt)
			}
			if logged.Before(last) {
				fail("entry %d: logged before the entry ahead of it (back-dated)", index)
			}
			if at.After(logged.Add(skew)) || logged.Sub(at) > maxDelay {
				fail("entry %d: happened at %s, logged at %s (back-dated)", index, r.At, r.LoggedAt)
			}
			last = logged
		}
	}
	fmt.Printf("OK %s: %d entries, root %s\n", origin, tree.N, base64.StdEncoding.EncodeToString(root[:]))
}

func hashes(values []string) []tlog.Hash {
	out := make([]tlog.Hash, len(values))
	for i, v := range values {
		raw, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(raw) != tlog.HashSize {
			fail("proof hash %q", v)
		}
		copy(out[i][:], raw)
	}
	return out
}

func inclusion(vkey, checkpointFile, evidenceFile string) {
	_, tree := checkpoint(vkey, readFile(checkpointFile))
	var evidence struct {
		Index int64    `json:"index"`
		Entry string   `json:"entry"`
		Proof []string `json:"proof"`
	}
	if err := json.Unmarshal(readFile(evidenceFile), &evidence); err != nil {
		fail("evidence: %v", err)
	}
	entry, err := base64.StdEncoding.DecodeString(evidence.Entry)
	if err != nil {
		fail("evidence entry: %v", err)
	}
	var r record
	if err := json.Unmarshal(entry, &r); err != nil || r.Index == nil || *r.Index != evidence.Index {
		fail("evidence: the entry does not name index %d", evidence.Index)
	}
	if err := tlog.CheckRecord(hashes(evidence.Proof), tree.N, tree.Hash, evidence.Index, tlog.RecordHash(entry)); err != nil {
		fail("inclusion of entry %d in %d: %v", evidence.Index, tree.N, err)
	}
	fmt.Printf("OK entry %d (%s) is in the tree of %d\n", evidence.Index, r.Event, tree.N)
}

func consistency(vkey, oldFile, newFile, proofFile string) {
	_, older := checkpoint(vkey, readFile(oldFile))
	_, newer := checkpoint(vkey, readFile(newFile))
	var proof struct {
		Proof []string `json:"proof"`
	}
	if err := json.Unmarshal(readFile(proofFile), &proof); err != nil {
		fail("proof: %v", err)
	}
	if older.N == newer.N {
		if older.Hash != newer.Hash {
			fail("two trees of size %d: the log forked", older.N)
		}
	} else if err := tlog.CheckTree(hashes(proof.Proof), newer.N, newer.Hash, older.N, older.Hash); err != nil {
		fail("the tree of %d does not extend the tree of %d: %v", newer.N, older.N, err)
	}
	fmt.Printf("OK the tree of %d extends the tree of %d\n", newer.N, older.N)
}

func main() {
	args := os.Args[1:]
	switch {
	case len(args) == 3 && args[0] == "audit":
		audit(string(readFile(args[1])), args[2])
	case len(args) == 4 && args[0] == "inclusion":
		inclusion(string(readFile(args[1])), args[2], args[3])
	case len(args) == 5 && args[0] == "consistency":
		consistency(string(readFile(args[1])), args[2], args[3], args[4])
	default:
		fmt.Fprintln(os.Stderr, "usage: tlogverify audit VKEY DIR | inclusion VKEY CHECKPOINT EVIDENCE | consistency VKEY OLD NEW PROOF")
		os.Exit(2)
	}
}
