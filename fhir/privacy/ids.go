package privacy

// idMatcher finds known local ids in the view: each id's letters and digits in order, with
// separators allowed between them, from the start of a word or number of the view to the end
// of one (where letters meet digits counts as both: every span is made of whole words and
// numbers, see appendNHSNumbers).
//
// It is an Aho-Corasick automaton over the ids, run over the letters and digits of each chain
// of the view (letters and digits joined by separators only), so the time is linear in the
// text whatever ids a sender chooses. Trying each id from each word start instead took two
// seconds for one field with a hundred ids sharing a long prefix (BenchmarkRedactorHostile,
// BenchmarkPrepareHostile in package fhir).
type idMatcher struct {
	edges map[uint64]int32 // state<<32 | rune -> state
	fail  []int32          // the longest proper suffix of a state's string that is a state
	out   []int32          // the length of the id a state completes, or 0
	dict  []int32          // the next state on the fail chain that completes an id, or -1
	n     int              // ids
}

// newIDMatcher builds the automaton of ids (normalised letters and digits), or returns nil
// when there are none.
func newIDMatcher(ids [][]rune) *idMatcher {
	if len(ids) == 0 {
		return nil
	}
	m := &idMatcher{edges: map[uint64]int32{}, fail: []int32{0}, out: []int32{0}, dict: []int32{-1}}
	for _, id := range ids {
		s := int32(0)
		for _, r := range id {
			next, ok := m.edges[edge(s, r)]
			if !ok {
				next = int32(len(m.fail))
				m.edges[edge(s, r)] = next
				m.fail, m.out, m.dict = append(m.fail, 0), append(m.out, 0), append(m.dict, -1)
			}
			s = next
		}
		if m.out[s] == 0 {
			m.n++
		}
		m.out[s] = int32(len(id))
	}
	// Breadth first, so a state's fail link is set before its children's.
	children := make([][]struct {
		r rune
		s int32
	}, len(m.fail))
	for k, s := range m.edges {
		from := int32(k >> 32)
		children[from] = append(children[from], struct {
			r rune
			s int32
		}{rune(uint32(k)), s})
	}
	queue := []int32{0}
	for len(queue) > 0 {
		from := queue[0]
		queue = queue[1:]
		for _, c := range children[from] {
			if from != 0 {
				f := m.fail[from]
				for {
					if next, ok := m.edges[edge(f, c.r)]; ok {
						m.fail[c.s] = next
						break
					}
					if f == 0 {
						break
					}
					f = m.fail[f]
				}
			}
			if f := m.fail[c.s]; m.out[f] > 0 {
				m.dict[c.s] = f
			} else {
				m.dict[c.s] = m.dict[f]
			}
			queue = append(queue, c.s)
		}
	}
	return m
}

func edge(s int32, r rune) uint64 { return uint64(s)<<32 | uint64(uint32(r)) }

// size is the number of distinct ids.
func (m *idMatcher) size() int {
	if m == nil {
		return 0
	}
	return m.n
}

// step is the state after reading r in state s.
func (m *idMatcher) step(s int32, r rune) int32 {
	for {
		if next, ok := m.edges[edge(s, r)]; ok {
			return next
		}
		if s == 0 {
			return 0
		}
		s = m.fail[s]
	}
}

// appendSpans appends a span for each known id in the view u; overlapping ones are merged
// as they are found, so a text full of matches adds few spans.
func (m *idMatcher) appendSpans(u []unit, sc *scratch, spans []span) []span {
	if m == nil {
		return spans
	}
	pos := sc.chain[:0] // the unit of each letter or digit read in the current chain
	state := int32(0)
	base := len(spans) // the spans before are not this matcher's
	for i, x := range u {
		if !alnum(x) {
			if x.class != classSep {
				pos, state = pos[:0], 0
			}
			continue
		}
		if len(pos) > 0 && int(pos[len(pos)-1]) < i-1 && !joined(u, int(pos[len(pos)-1])+1, i) {
			pos, state = pos[:0], 0
		}
		pos = append(pos, int32(i))
		state = m.step(state, x.r)
		if i+1 < len(u) && u[i+1].class == x.class {
			continue // not the end of a word or number
		}
		// The longest id ending here that starts at the start of a word or number.
		first := -1
		for s := state; s > 0; s = m.dict[s] {
			if m.out[s] == 0 {
				continue
			}
			f := int(pos[len(pos)-int(m.out[s])])
			if f == 0 || u[f-1].class != u[f].class {
				first = f
				break
			}
		}
		if first < 0 {
			continue
		}
		// It takes in the spans it overlaps (each is taken in at most once).
		for len(spans) > base && spans[len(spans)-1].last >= first {
			first = min(first, spans[len(spans)-1].first)
			spans = spans[:len(spans)-1]
		}
		spans = append(spans, span{first, i, KindLocalID})
	}
	sc.chain = pos
	return spans
}
