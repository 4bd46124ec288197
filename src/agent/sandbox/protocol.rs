//! What the sandbox's `operator` and the agent's socket say to each other: one request, one
//! answer, each a line of JSON. The client is the whole of `operator` inside the sandbox: it
//! reads no config and no DB, and knows only the socket and its command's token.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

use serde::{Deserialize, Serialize};

/// The variable naming the socket inside the sandbox: where it is set, `operator` is the
/// client.
pub const SOCKET_VAR: &str = "OPERATOR_VERB_SOCKET";
/// The variable holding the token of the one command allowed to change something.
pub const TOKEN_VAR: &str = "OPERATOR_VERB_TOKEN";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    /// The words after `operator`.
    pub argv: Vec<String>,
    /// The command's token, where the agent minted one.
    #[serde(default)]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Answer {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// The client: sends this process's words to the socket, prints the answer, and returns the
/// exit code. Without a socket to reach it says so and fails.
pub fn client(socket: &str) -> i32 {
    let request = Request {
        argv: std::env::args().skip(1).collect(),
        token: std::env::var(TOKEN_VAR).ok().filter(|t| !t.is_empty()),
    };
    match ask(socket, &request) {
        Ok(a) => {
            print!("{}", a.stdout);
            eprint!("{}", a.stderr);
            let _ = std::io::stdout().flush();
            a.code
        }
        Err(e) => {
            eprintln!("error: the operator's socket at {socket}: {e}");
            1
        }
    }
}

/// One request and its answer.
pub fn ask(socket: &str, request: &Request) -> std::io::Result<Answer> {
    let mut s = UnixStream::connect(socket)?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    s.write_all(&line)?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer)?;
    serde_json::from_str(&answer).map_err(std::io::Error::other)
}
