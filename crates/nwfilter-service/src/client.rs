//! Client side of the protocol, used by the CLI's `--connect` mode.

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use crate::protocol::{Op, Reply, Request, Response};

/// Why a call did not produce a reply.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to the daemon at {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("talking to the daemon: {0}")]
    Io(#[from] io::Error),
    #[error("the daemon sent a malformed response: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("the daemon closed the connection without answering")]
    Closed,
    /// The daemon carried out the request and reported an error.
    #[error("{0}")]
    Refused(String),
}

/// A connection to `nwfilterd`.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_owned(),
            source,
        })?;
        let writer = stream.try_clone()?;
        Ok(Client {
            reader: BufReader::new(stream),
            writer,
        })
    }

    /// Sends one operation and waits for its response.
    pub fn call(&mut self, op: Op) -> Result<Reply, ClientError> {
        let mut line = serde_json::to_vec(&Request::new(op))?;
        line.push(b'\n');
        // A daemon that refuses the connection (busy, or a request over
        // its size limit) answers and closes, possibly before our request
        // is written: its answer is still waiting to be read, and it says
        // more than the broken pipe does.
        let sent = match self
            .writer
            .write_all(&line)
            .and_then(|()| self.writer.flush())
        {
            Err(e)
                if !matches!(
                    e.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) =>
            {
                return Err(e.into())
            }
            sent => sent,
        };
        let mut answer = String::new();
        match (sent, self.reader.read_line(&mut answer)) {
            (_, Ok(n)) if n > 0 => {}
            (Err(e), _) | (Ok(()), Err(e)) => return Err(e.into()),
            (Ok(()), Ok(_)) => return Err(ClientError::Closed),
        }
        match serde_json::from_str(&answer)? {
            Response::Ok { result } => Ok(result),
            Response::Error { message } => Err(ClientError::Refused(message)),
        }
    }
}
