use super::Builder;

/// Counting interpretation: runs a circuit without data and tallies its gates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GateCounter {
    /// AND gates (each one garbled table).
    pub ands: usize,
    /// XOR gates (free).
    pub xors: usize,
    /// NOT gates (free).
    pub nots: usize,
}

impl Builder for GateCounter {
    type Wire = ();

    fn xor(&mut self, _: &(), _: &()) {
        self.xors += 1;
    }
    fn and(&mut self, _: &(), _: &()) {
        self.ands += 1;
    }
    fn not(&mut self, _: &()) {
        self.nots += 1;
    }
    fn zero(&mut self) {}
}
