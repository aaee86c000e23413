package chaos

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards one directed Raft link (node From dials node To through
// it). It can be cut, which closes the live connections and blackholes new
// ones (accepted, never answered, closed when the link heals), and it can
// delay every chunk of bytes by a fixed latency, set per direction: forward
// (From's requests to To) and back (To's replies to From).
type Proxy struct {
	From, To int
	addr     string
	target   string
	ln       net.Listener

	mu     sync.Mutex
	cut    bool
	fwd    time.Duration         // delay of bytes from From to To
	back   time.Duration         // delay of bytes from To to From
	live   map[net.Conn]struct{} // both ends of every forwarded connection
	held   map[net.Conn]struct{} // connections accepted while cut
	closed bool
	wg     sync.WaitGroup

	// Counters that prove a fault took effect.
	forwarded   atomic.Int64 // connections forwarded
	blackholed  atomic.Int64 // connections accepted while cut
	severed     atomic.Int64 // live connections closed by a cut
	delayedByte atomic.Int64 // bytes forwarded with a delay
}

// newProxy listens on addr and forwards to target.
func newProxy(from, to int, addr, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{From: from, To: to, addr: ln.Addr().String(), target: target, ln: ln,
		live: map[net.Conn]struct{}{}, held: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.acceptLoop()
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.addr }

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		p.mu.Lock()
		switch {
		case p.closed:
			c.Close()
		case p.cut:
			p.held[c] = struct{}{}
			p.blackholed.Add(1)
		default:
			p.wg.Add(1)
			go p.forward(c)
		}
		p.mu.Unlock()
	}
}

// forward dials the target and pipes both directions.
func (p *Proxy) forward(in net.Conn) {
	defer p.wg.Done()
	out, err := net.DialTimeout("tcp", p.target, 2*time.Second)
	if err != nil {
		in.Close()
		return
	}
	p.mu.Lock()
	if p.cut || p.closed {
		p.mu.Unlock()
		in.Close()
		out.Close()
		return
	}
	p.live[in], p.live[out] = struct{}{}, struct{}{}
	p.mu.Unlock()
	p.forwarded.Add(1)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(out, in, true) }()
	go func() { defer wg.Done(); p.pipe(in, out, false) }()
	wg.Wait()
	p.mu.Lock()
	delete(p.live, in)
	delete(p.live, out)
	p.mu.Unlock()
}

type chunk struct {
	data []byte
	read time.Time
}

// pipe copies src to dst, holding each chunk until its read time plus the
// delay of its direction. The delay is the one in force while the chunk
// waits, so raising it holds back chunks already queued and lowering it
// releases them. Reading and writing run apart, so a delay adds latency
// without limiting throughput.
func (p *Proxy) pipe(dst, src net.Conn, forward bool) {
	delay := func() time.Duration {
		fwd, back := p.Delays()
		if forward {
			return fwd
		}
		return back
	}
	q := make(chan chunk, 1024)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				if delay() > 0 {
					p.delayedByte.Add(int64(n))
				}
				q <- chunk{data: buf[:n], read: time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		for {
			wait := time.Until(c.read.Add(delay()))
			if wait <= 0 {
				break
			}
			time.Sleep(min(wait, 20*time.Millisecond))
		}
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	// Close both ends so the other direction ends too; drain the reader.
	dst.Close()
	src.Close()
	for range q {
	}
}

// Cut severs the link: live connections are closed and new ones are held
// open without being forwarded until Heal.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return
	}
	p.cut = true
	for c := range p.live {
		c.Close()
		p.severed.Add(1)
	}
}

// Heal restores the link and closes the connections held while it was cut,
// so that their dialers reconnect at once.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	for c := range p.held {
		c.Close()
		delete(p.held, c)
	}
}

// IsCut reports whether the link is cut.
func (p *Proxy) IsCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

// SetDelay sets the latency added to every chunk, in both directions, from
// now on.
func (p *Proxy) SetDelay(d time.Duration) { p.SetDelays(d, d) }

// SetDelays sets the latency of each direction from now on.
func (p *Proxy) SetDelays(fwd, back time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fwd, p.back = fwd, back
}

// Delays are the latencies in force.
func (p *Proxy) Delays() (fwd, back time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fwd, p.back
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	for c := range p.live {
		c.Close()
	}
	for c := range p.held {
		c.Close()
	}
	p.mu.Unlock()
	p.ln.Close()
	p.wg.Wait()
}

// proxyStats are a proxy's counters at one moment.
type proxyStats struct {
	Forwarded, Blackholed, Severed, DelayedBytes int64
}

func (p *Proxy) stats() proxyStats {
	return proxyStats{p.forwarded.Load(), p.blackholed.Load(), p.severed.Load(), p.delayedByte.Load()}
}
