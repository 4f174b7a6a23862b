package pipeline

import "time"

// Mapper is what the transform stage needs of a Stream.
type Mapper interface {
	Map(raw []byte, ev *Event) error
}

// docGuess is the room reserved per record for its ECS document, on top of
// twice the record's size (event.original repeats the record, escaped).
const docGuess = 768

// MapRecords maps records with m, as the pipeline's transform stage does:
// it appends the events to events and, for records Map refused, dead
// letters (stage "map", stamped now) to letters.
//
// The documents of one call share one allocation: each Map call gets the
// free end of it in Event.Doc to append to, and each document is capped at
// its length, so that appending to one later copies it rather than writing
// over the next. A document that outgrows the free space simply gets its
// own allocation from append. This keeps the transform stage at a handful
// of allocations per page instead of several per record.
func MapRecords(m Mapper, stream string, records [][]byte, now time.Time, events []Event, letters []DeadLetter) ([]Event, []DeadLetter) {
	size := 0
	for _, raw := range records {
		size += 2*len(raw) + docGuess
	}
	arena := make([]byte, 0, size)
	for _, raw := range records {
		free := arena[len(arena):]
		ev := Event{Doc: free}
		if err := m.Map(raw, &ev); err != nil {
			letters = append(letters, DeadLetter{Stream: stream, Stage: "map", Reason: err.Error(), Time: now, Original: raw})
			continue
		}
		// Written in place, the document has the free space's capacity.
		// (A new allocation of the same capacity would only waste the
		// space skipped here; missing an in-place write could not happen.)
		if n := len(ev.Doc); n > 0 && cap(ev.Doc) == cap(free) {
			arena = arena[:len(arena)+n]
		}
		ev.Doc = ev.Doc[:len(ev.Doc):len(ev.Doc)]
		events = append(events, ev)
	}
	return events, letters
}
