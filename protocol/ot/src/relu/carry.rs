//! The comparison: a ripple-carry chain over the low w − 1 bits of a + b, one AND per bit on
//! XOR shares, 64 ReLUs per word.
//!
//! c₀ = 0, c_{s+1} = maj(a_s, b_s, c_s) = c_s ⊕ (a_s ⊕ c_s)(b_s ⊕ c_s). Step 0 is the cross
//! product a₀·b₀ from one random OT (each side reveals its bit masked by its ROT bit); steps
//! s ≥ 1 are Beaver ANDs of u = a_s ⊕ c_s (server share a_s ⊕ c^S, client share c^C) and
//! v = b_s ⊕ c_s (server c^S, client b_s ⊕ c^C). Every opening is masked by fresh triple bits.
//! The chain yields shares of c_F (low-bit carry of the truncation) and of c_{w−1}.

use super::material::Triples;

/// Which party this state belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Server,
    Client,
}

/// Word range of one step's triple for this segment.
pub(crate) struct StepTriple {
    pub a: Vec<u64>,
    pub b: Vec<u64>,
    pub g: Vec<u64>,
}

impl StepTriple {
    pub(crate) fn slice(t: &Triples, lo: usize, len: usize) -> Self {
        StepTriple {
            a: t.a.range(lo, len),
            b: t.b.range(lo, len),
            g: t.g.range(lo, len),
        }
    }
}

/// One party's ripple state for a segment of ReLUs.
pub(crate) struct Carry {
    role: Role,
    /// Input bit planes 0..=j of this party's share (a or b).
    planes: Vec<Vec<u64>>,
    /// Step 0: this party's ROT bit (server ρ, client e) and product share.
    r0: Vec<u64>,
    p0: Vec<u64>,
    triples: Vec<StepTriple>,
    /// Current carry share c_s.
    c: Vec<u64>,
    /// Step at which c equals c_F (F), if F ≥ 1.
    f: u32,
    f_share: Vec<u64>,
    mine: Vec<Vec<Vec<u64>>>,
    theirs: Vec<Vec<Vec<u64>>>,
}

fn xor(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

impl Carry {
    /// A fresh state; `planes` holds bit planes 0..=j, `triples` steps 1..=j.
    pub(crate) fn new(
        role: Role,
        planes: Vec<Vec<u64>>,
        r0: Vec<u64>,
        p0: Vec<u64>,
        triples: Vec<StepTriple>,
        f: u32,
    ) -> Self {
        let nw = r0.len();
        let steps = planes.len();
        Carry {
            role,
            planes,
            r0,
            p0,
            triples,
            c: vec![0; nw],
            f,
            f_share: vec![0; nw],
            mine: vec![Vec::new(); steps],
            theirs: vec![Vec::new(); steps],
        }
    }

    /// Number of words per plane.
    pub(crate) fn words(&self) -> usize {
        self.r0.len()
    }

    /// This party's opening of step s (requires the carry c_s): one plane for s = 0, two after.
    pub(crate) fn open(&mut self, s: usize) -> &[Vec<u64>] {
        let o = if s == 0 {
            vec![xor(&self.planes[0], &self.r0)]
        } else {
            let t = &self.triples[s - 1];
            match self.role {
                // ε_S = a_s ⊕ c ⊕ α, η_S = c ⊕ β
                Role::Server => vec![
                    self.planes[s]
                        .iter()
                        .zip(&self.c)
                        .zip(&t.a)
                        .map(|((p, c), a)| p ^ c ^ a)
                        .collect(),
                    xor(&self.c, &t.b),
                ],
                // ε_C = c ⊕ α, η_C = b_s ⊕ c ⊕ β
                Role::Client => vec![
                    xor(&self.c, &t.a),
                    self.planes[s]
                        .iter()
                        .zip(&self.c)
                        .zip(&t.b)
                        .map(|((p, c), b)| p ^ c ^ b)
                        .collect(),
                ],
            }
        };
        self.mine[s] = o;
        &self.mine[s]
    }

    /// Planes in this party's opening of step s.
    pub(crate) fn planes_of(s: usize) -> usize {
        if s == 0 {
            1
        } else {
            2
        }
    }

    /// Stores the other party's opening of step s.
    pub(crate) fn receive(&mut self, s: usize, planes: Vec<Vec<u64>>) {
        self.theirs[s] = planes;
    }

    /// Combines both openings of step s: the carry becomes c_{s+1}.
    pub(crate) fn process(&mut self, s: usize) {
        let nw = self.words();
        if s == 0 {
            let (x, y) = match self.role {
                Role::Server => (&self.mine[0][0], &self.theirs[0][0]),
                Role::Client => (&self.theirs[0][0], &self.mine[0][0]),
            };
            for i in 0..nw {
                // a₀b₀ = XY ⊕ X·e ⊕ ρ·Y ⊕ ρe: the server takes XY ⊕ ρY, the client X·e.
                self.c[i] = match self.role {
                    Role::Server => (x[i] & y[i]) ^ (self.r0[i] & y[i]) ^ self.p0[i],
                    Role::Client => (x[i] & self.r0[i]) ^ self.p0[i],
                };
            }
        } else {
            let t = &self.triples[s - 1];
            let (m, o) = (&self.mine[s], &self.theirs[s]);
            for i in 0..nw {
                let e = m[0][i] ^ o[0][i];
                let h = m[1][i] ^ o[1][i];
                let mut uv = t.g[i] ^ (e & t.b[i]) ^ (h & t.a[i]);
                if self.role == Role::Server {
                    uv ^= e & h;
                }
                self.c[i] ^= uv;
            }
        }
        if s + 1 == self.f as usize {
            self.f_share.clone_from(&self.c);
        }
    }

    /// The carry share after the last processed step.
    pub(crate) fn carry(&self) -> &[u64] {
        &self.c
    }

    /// The share of c_F (zero if F = 0).
    pub(crate) fn low_carry(&self) -> &[u64] {
        &self.f_share
    }
}

/// One action of a party's turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Combine both openings of step s.
    Process(usize),
    /// Compute and send this party's opening of step s.
    Open(usize),
}

/// The alternating schedule both parties follow (index 0 = server, 1 = client).
///
/// On its turn a party repeatedly combines a step whose two openings it has, or opens the next
/// step once it holds the carry before it; what it opened is its message. Both parties advance
/// the same counters for both roles, so each knows how many openings the other's message holds.
#[derive(Clone, Debug)]
pub(crate) struct Schedule {
    last: u32,
    opened: [u32; 2],
    processed: [u32; 2],
}

impl Schedule {
    /// Steps 0..=last.
    pub(crate) fn new(last: u32) -> Self {
        Schedule {
            last,
            opened: [0; 2],
            processed: [0; 2],
        }
    }

    /// Party p's turn: calls `act(Step::Process(s))` / `act(Step::Open(s))` in order; returns
    /// the steps it opened.
    pub(crate) fn turn(&mut self, p: usize, mut act: impl FnMut(Step)) -> std::ops::Range<u32> {
        let o = 1 - p;
        let start = self.opened[p];
        loop {
            let s = self.processed[p];
            if s <= self.last && self.opened[p] > s && self.opened[o] > s {
                act(Step::Process(s as usize));
                self.processed[p] += 1;
            } else if self.opened[p] <= self.last && self.opened[p] == self.processed[p] {
                act(Step::Open(self.opened[p] as usize));
                self.opened[p] += 1;
            } else {
                break;
            }
        }
        start..self.opened[p]
    }

    /// Whether party p has combined every step (knows its share of c_{w−1}).
    pub(crate) fn done(&self, p: usize) -> bool {
        self.processed[p] > self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_alternates_two_steps_per_message() {
        for last in 0..8u32 {
            let mut s = Schedule::new(last);
            let mut msgs = Vec::new();
            let mut p = 0;
            while !(s.done(0) && s.done(1)) {
                msgs.push((p, s.turn(p, |_| {})));
                p = 1 - p;
                assert!(msgs.len() < 40);
            }
            assert_eq!(msgs[0], (0, 0..1));
            if last >= 1 {
                assert_eq!(msgs[1], (1, 0..2));
                assert_eq!(msgs[2], (0, 1..3.min(last + 1)));
            }
            // Every step is opened exactly once by each party.
            for party in 0..2 {
                let total: u32 = msgs
                    .iter()
                    .filter(|m| m.0 == party)
                    .map(|m| m.1.len() as u32)
                    .sum();
                assert_eq!(total, last + 1);
            }
            assert!(msgs.len() as u32 <= last + 3);
        }
    }
}
