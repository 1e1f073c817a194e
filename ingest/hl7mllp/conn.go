package hl7mllp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/psgw/psgw/fhir/privacy"
	"github.com/psgw/psgw/ingest"
	"github.com/psgw/psgw/ingest/hl7mllp/hl7"
)

// Reasons counted with ingest.Deps.CountRejected, and so in psgw_ingest_errors_total.
const (
	ReasonParse        = "parse"          // not HL7: no MSH, bad delimiters, binary
	ReasonCharset      = "charset"        // a byte not valid in the declared (or default) character set
	ReasonLineEndings  = "line_endings"   // segments separated by LF instead of CR
	ReasonUnsupported  = "unsupported"    // a message type or trigger event psgw does not handle
	ReasonInvalid      = "invalid"        // an ADT breaking a field rule (no PID, bad NHS number)
	ReasonTooLarge     = "too_large"      // a frame over MaxMessageBytes
	ReasonStartInFrame = "start_in_frame" // a stray start byte inside a frame (answered AR once, at the frame's end)
	ReasonNoEndBlock   = "no_end_block"   // a frame abandoned without its end block when the next message began (no ACK)
	ReasonBadTrailer   = "bad_trailer"    // an end byte followed by something other than CR, or by nothing within TrailerGrace
	ReasonJunk         = "junk"           // bytes outside any frame (no ACK: there is no message)
	ReasonNoMessage    = "no_message"     // a new connection sent nothing within FirstMessageTimeout
	ReasonIdleTimeout  = "idle_timeout"   // no message started within IdleTimeout
	ReasonReadTimeout  = "read_timeout"   // a message not finished within ReadTimeout
	ReasonSlowSender   = "slow_sender"    // a kilobyte of a frame not arriving within FirstKilobyteTimeout
	ReasonCutShort     = "cut_short"      // the connection closed inside a frame
)

// serveConn answers every frame of one connection, in order, until the peer goes away, a
// timeout passes or ctx is cancelled.
func (a *Adapter) serveConn(ctx context.Context, conn net.Conn) {
	dr := &deadlineReader{ctx: ctx, conn: conn, first: a.cfg.FirstMessageTimeout, idle: a.cfg.IdleTimeout,
		read: a.cfg.ReadTimeout, kilobyte: a.cfg.FirstKilobyteTimeout, grace: a.cfg.TrailerGrace}
	fr := hl7.NewFrameReader(dr, a.cfg.MaxMessageBytes)
	fr.AwaitTrailer = dr.awaitTrailer
	log := a.deps.Logger.With().Str("peer", conn.RemoteAddr().String()).Logger()
	for {
		dr.arm(fr.Pending())
		frame, err := fr.ReadFrame()
		var ack []byte
		switch {
		case err == nil:
			ack = a.handle(ctx, frame)
			if ack == nil {
				return // shutting down with the publish abandoned: say nothing
			}
		case errors.Is(err, io.EOF):
			return
		case errors.Is(err, hl7.ErrJunk):
			// No message, so no ACK: the sender would take it as the answer to its next one.
			a.deps.CountRejected(ReasonJunk)
			continue
		case errors.Is(err, hl7.ErrNoEndBlock):
			// Its sender never ended it: an ACK would answer its next message instead.
			a.deps.CountRejected(ReasonNoEndBlock)
			continue
		case errors.Is(err, hl7.ErrTooLarge):
			ack = a.refuseRaw(frame, ReasonTooLarge, "message larger than the limit of "+strconv.Itoa(a.cfg.MaxMessageBytes)+" bytes")
		case errors.Is(err, hl7.ErrStartInFrame):
			ack = a.refuseRaw(frame, ReasonStartInFrame, "MLLP start byte inside a message; message discarded")
		case errors.Is(err, hl7.ErrBadTrailer):
			ack = a.refuseRaw(frame, ReasonBadTrailer, "MLLP end byte not followed by carriage return; message discarded")
		default:
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil:
				reason := ReasonIdleTimeout
				switch {
				case dr.inFrame && dr.slow():
					reason = ReasonSlowSender
				case dr.inFrame:
					reason = ReasonReadTimeout
				case !dr.started:
					reason = ReasonNoMessage
				}
				a.deps.CountRejected(reason)
				a.cutLog.Info().Str("peer", conn.RemoteAddr().String()).Str("reason", reason).Msg("closing connection")
			case errors.Is(err, io.ErrUnexpectedEOF):
				a.deps.CountRejected(ReasonCutShort)
			}
			return // the connection is broken or closed
		}
		_ = conn.SetWriteDeadline(time.Now().Add(a.cfg.ReadTimeout))
		if err := hl7.WriteFrame(conn, ack); err != nil {
			if ctx.Err() == nil {
				log.Info().Err(err).Msg("could not write ACK; closing connection")
			}
			return
		}
	}
}

// handle checks and stores one message and returns its ACK, or nil when ctx was cancelled
// before the store answered (then the sender must hear nothing).
func (a *Adapter) handle(ctx context.Context, frame []byte) []byte {
	now := a.deps.Now()
	if err := hl7.CheckEncoding(frame, a.cfg.DefaultCharset); err != nil {
		// The reason names the character set and the byte's position, never its value.
		return a.refuseRaw(frame, ReasonCharset, err.Error())
	}
	msg, err := hl7.Parse(frame)
	if err != nil {
		return a.refuseRaw(frame, ReasonParse, err.Error())
	}
	if msg.LineEndingsNormalised() {
		// Segments are separated by CR (docs/adapters.md, "The HL7 v2 MLLP adapter").
		// Accepting LF would hide a broken interface until a receiver less tolerant than
		// this one meets it.
		a.deps.CountRejected(ReasonLineEndings)
		return hl7.BuildACK(msg, hl7.AckReject, "segments must be separated by carriage return (0x0D), not line feed", now)
	}
	adt, err := hl7.ExtractADT(msg)
	if err != nil {
		reason := ReasonInvalid
		if errors.Is(err, hl7.ErrUnsupported) {
			reason = ReasonUnsupported
		}
		a.deps.CountRejected(reason)
		// hl7 errors name segments, fields and rules, never values: safe to send and log.
		return hl7.BuildACK(msg, hl7.AckReject, err.Error(), now)
	}
	h := msg.Header()
	if h.ControlID == "" {
		a.deps.CountRejected(ReasonInvalid)
		return hl7.BuildACK(msg, hl7.AckReject, "MSH-10: message control id required", now)
	}
	if p := controlIDProblem(h.ControlID); p != "" {
		a.deps.CountRejected(ReasonInvalid)
		return hl7.BuildACK(msg, hl7.AckReject, "MSH-10: message control id "+p, now)
	}
	rec := ingest.Record{
		Kind:       ingest.KindADT,
		Source:     a.cfg.Source,
		LocalID:    recordLocalID(h.ControlID),
		Key:        RecordKey(a.cfg.Source, adt.Patient),
		ID:         RecordID(a.cfg.Source, h),
		Data:       bytes.Clone(frame), // the frame reader reuses its buffer
		ReceivedAt: now.UTC(),
	}
	pctx, cancel := context.WithTimeout(ctx, a.cfg.PublishTimeout)
	defer cancel()
	if _, err := a.deps.Publisher.Publish(pctx, rec); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ingest.ErrTooLarge) {
			// It can never be stored: AE would have the EPR resend it for ever.
			return hl7.BuildACK(msg, hl7.AckReject, "message too large for the gateway's store", now)
		}
		a.deps.Logger.Warn().Err(err).Str("record", rec.ID).Str("event", adt.Event).Msg("ADT message not stored; answered AE")
		text := "message could not be stored now; resend later"
		if cause := ingest.UnavailableCause(err); cause != "" {
			// The store's cause (docs/cluster.md), for the EPR's interface log.
			text = "message could not be stored now: " + cause + "; resend later"
		}
		return hl7.BuildACK(msg, hl7.AckError, text, now)
	}
	return hl7.BuildACK(msg, hl7.AckAccept, "", now)
}

// controlIDProblem says why MSH-10 cannot name a message, or "": control characters, or
// characters that do not show (zero-width, soft hyphen, bidirectional controls), with which
// two control ids look alike (the rules of fhir.LocalIDProblem). The answer never quotes it.
func controlIDProblem(id string) string {
	switch {
	case strings.ContainsFunc(id, unicode.IsControl):
		return "holds control characters"
	case strings.ContainsFunc(id, privacy.Invisible):
		return "holds invisible or bidirectional formatting characters"
	}
	return ""
}

// recordLocalID is the local id an ADT record is stored under: its control id, unless that
// breaks the rules every local id in the gateway keeps (ingest.LocalIDProblem), an NHS number
// among them. A numeric control id passes Modulus 11 one time in eleven, so such a message is
// not refused: its control id is only echoed in the ACK, as HL7 requires, and kept nowhere.
func recordLocalID(controlID string) string {
	if ingest.LocalIDProblem(controlID) != "" {
		return ""
	}
	return controlID
}

// refuseRaw counts a frame that could not be parsed and returns its AR, with MSA-2 set to
// whatever control id could be salvaged from it.
func (a *Adapter) refuseRaw(frame []byte, reason, text string) []byte {
	a.deps.CountRejected(reason)
	return hl7.BuildACKRaw(hl7.SalvageControlID(frame), hl7.AckReject, text, a.deps.Now())
}

// deadlineReader applies the first-message timeout until a new connection's first byte, the
// idle timeout until each later message starts, and from then on the read timeout to the
// whole message and the kilobyte timeout to each kilobyte of it (the first counted from the
// message's first byte), so a peer that connects and sends nothing, one that goes quiet and
// one that dribbles a byte a second are all cut off. It also tells ServeConns when the
// connection is idle (and may be closed to make room for a new one) and when it is busy. arm
// is called before each frame.
type deadlineReader struct {
	ctx                                context.Context
	conn                               net.Conn
	first, idle, read, kilobyte, grace time.Duration
	started, inFrame                   bool
	frameDeadline                      time.Time // the read timeout's
	kilobyteDeadline                   time.Time // the next kilobyte's
	frameBytes                         int
}

// arm starts the wait for the next frame. pending says that bytes of it are already buffered
// (a sender that sent its next message before reading the ACK): then it has started.
func (d *deadlineReader) arm(pending bool) {
	d.inFrame = false
	if pending {
		d.begin()
		return
	}
	wait := d.idle
	if !d.started {
		wait = d.first
	}
	_ = d.conn.SetReadDeadline(time.Now().Add(wait))
	ingest.ConnIdle(d.ctx)
	if testHookState != nil {
		testHookState(d.conn.RemoteAddr(), false)
	}
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	n, err := d.conn.Read(p)
	if n > 0 && !d.inFrame {
		d.begin()
	}
	if n > 0 {
		before := d.frameBytes / 1024
		d.frameBytes += n
		if d.frameBytes/1024 > before {
			// A kilobyte arrived in time: the next one has as long again.
			d.kilobyteDeadline = time.Now().Add(d.kilobyte)
			_ = d.conn.SetReadDeadline(d.deadline())
		}
	}
	return n, err
}

// begin notes that a message has started: the read and kilobyte timeouts apply, and the
// connection is busy, so it is not closed to make room for another.
func (d *deadlineReader) begin() {
	ingest.ConnBusy(d.ctx)
	d.inFrame, d.started = true, true
	now := time.Now()
	d.frameDeadline = now.Add(d.read)
	d.kilobyteDeadline = now.Add(d.kilobyte)
	d.frameBytes = 0
	_ = d.conn.SetReadDeadline(d.deadline())
	if testHookState != nil {
		testHookState(d.conn.RemoteAddr(), true)
	}
}

// deadline is the earlier of the message's read deadline and its next kilobyte's.
func (d *deadlineReader) deadline() time.Time {
	if d.kilobyte > 0 && d.kilobyteDeadline.Before(d.frameDeadline) {
		return d.kilobyteDeadline
	}
	return d.frameDeadline
}

// slow reports whether the deadline that passed was a kilobyte's, not the whole message's.
func (d *deadlineReader) slow() bool {
	return d.kilobyte > 0 && d.kilobyteDeadline.Before(d.frameDeadline)
}

// testHookState, when set (by tests, before the listener starts), is called each time a
// connection is marked busy or idle.
var testHookState func(peer net.Addr, busy bool)

// awaitTrailer is the FrameReader's AwaitTrailer: it gives the CR after an end byte the grace
// period (within the frame's deadlines), then restores them.
func (d *deadlineReader) awaitTrailer() func() {
	at := time.Now().Add(d.grace)
	if dl := d.deadline(); !dl.IsZero() && dl.Before(at) {
		at = dl
	}
	_ = d.conn.SetReadDeadline(at)
	return func() { _ = d.conn.SetReadDeadline(d.deadline()) }
}
