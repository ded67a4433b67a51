//! A buffered connection over the host's `tcp` import, for drivers that
//! speak a line- or length-framed protocol (Redis's RESP, memcached's,
//! SMTP-like ones): send bytes, read a line, read exactly n bytes. Reads
//! are bounded so a misbehaving server cannot make the driver buffer
//! without end.

use crate::Error;
use crate::tcp::{ConnectOptions, Connection as Stream};

/// The longest line [`Conn::read_line`] accepts.
pub const MAX_LINE: usize = 64 * 1024;
/// The most bytes [`Conn::read_exact`] reads at once.
pub const MAX_READ: usize = 16 * 1024 * 1024;
/// What one host read asks for.
const CHUNK: u32 = 16 * 1024;

pub struct Conn {
    stream: Stream,
    buf: Vec<u8>,
    /// Where the unread part of `buf` starts.
    pos: usize,
}

impl Conn {
    /// Connect to `host:port`, which must be the host and port the
    /// connection configuration names (the host refuses any other).
    pub fn connect(host: &str, port: u16, options: &ConnectOptions) -> Result<Conn, Error> {
        Ok(Conn {
            stream: Stream::connect(host, port, options)?,
            buf: Vec::new(),
            pos: 0,
        })
    }

    /// Write all of `data`.
    pub fn send(&self, data: &[u8]) -> Result<(), Error> {
        self.stream.write(data)
    }

    /// The next line, without its `\r\n` (or `\n`).
    pub fn read_line(&mut self) -> Result<Vec<u8>, Error> {
        // Bytes after `pos` already known to hold no newline (stays valid
        // across `fill`, which only drops bytes before `pos`).
        let mut scanned = 0;
        loop {
            let start = self.pos + scanned;
            if let Some(i) = self.buf[start..].iter().position(|&b| b == b'\n') {
                let end = start + i;
                let mut line = self.buf[self.pos..end].to_vec();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.pos = end + 1;
                return Ok(line);
            }
            scanned = self.buf.len() - self.pos;
            if scanned > MAX_LINE {
                return Err(Error::Other(format!(
                    "the server sent a line longer than {MAX_LINE} bytes"
                )));
            }
            self.fill()?;
        }
    }

    /// Exactly `n` bytes.
    pub fn read_exact(&mut self, n: usize) -> Result<Vec<u8>, Error> {
        if n > MAX_READ {
            return Err(Error::Other(format!(
                "the server announced {n} bytes, more than the {MAX_READ} a driver reads"
            )));
        }
        while self.buf.len() - self.pos < n {
            self.fill()?;
        }
        let out = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(out)
    }

    /// Read more from the host, first dropping what was consumed.
    fn fill(&mut self) -> Result<(), Error> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let data = self.stream.read(CHUNK)?;
        if data.is_empty() {
            return Err(Error::ConnectionFailed("the server closed the connection".into()));
        }
        self.buf.extend_from_slice(&data);
        Ok(())
    }
}
