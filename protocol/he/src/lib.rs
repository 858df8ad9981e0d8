//! BFV linear layers: the client learns L(mask) − s, the server keeps s.
