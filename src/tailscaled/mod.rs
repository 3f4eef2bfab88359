//! tailscaled's LocalAPI, asked one thing: is this machine logged in to its tailnet?
//!
//! `provision --skip-if-logged-in` mints nothing when tailscaled no longer needs a key, and
//! `revoke --after-join` waits until tailscaled is `Running` before revoking the key it joined
//! with. Both ask `GET /localapi/v0/status?peers=false` over tailscaled's unix socket with the
//! headers tailscale's own local client sends (see [`http`]). Every call is bounded by a short
//! timeout; what tailscaled answers is checked, never trusted to be small or well-formed.

mod http;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use http::{CAPABILITY_VERSION, HOST};

/// Where tailscaled listens on Linux.
pub const DEFAULT_SOCKET: &str = "/var/run/tailscale/tailscaled.sock";

/// How long one status request may take, connecting included.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// The status path: the backend state, without the peer list (which can be large).
pub const STATUS_PATH: &str = "/localapi/v0/status?peers=false";

/// tailscaled's `BackendState` (`ipn.State`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendState {
    NoState,
    InUseOtherUser,
    NeedsLogin,
    NeedsMachineAuth,
    Stopped,
    Starting,
    Running,
}

impl BackendState {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "NoState" => Self::NoState,
            "InUseOtherUser" => Self::InUseOtherUser,
            "NeedsLogin" => Self::NeedsLogin,
            "NeedsMachineAuth" => Self::NeedsMachineAuth,
            "Stopped" => Self::Stopped,
            "Starting" => Self::Starting,
            "Running" => Self::Running,
            _ => return None,
        })
    }

    /// The name tailscaled uses.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NoState => "NoState",
            Self::InUseOtherUser => "InUseOtherUser",
            Self::NeedsLogin => "NeedsLogin",
            Self::NeedsMachineAuth => "NeedsMachineAuth",
            Self::Stopped => "Stopped",
            Self::Starting => "Starting",
            Self::Running => "Running",
        }
    }

    /// Whether the node holds a login: `Running`, `Starting` and `Stopped` (stopped by the
    /// user, still logged in) need no auth key; `NeedsLogin`, `NeedsMachineAuth`, `NoState`
    /// and `InUseOtherUser` may.
    pub fn logged_in(&self) -> bool {
        matches!(self, Self::Running | Self::Starting | Self::Stopped)
    }
}

/// Asking tailscaled failed, or it never got to `Running`.
#[derive(Debug, thiserror::Error)]
pub enum TailscaledError {
    /// Nothing listens at the socket path.
    #[error("{}: tailscaled is not listening there", socket.display())]
    Absent { socket: PathBuf },
    /// The socket did not answer in time.
    #[error("{}: tailscaled did not answer within the timeout", socket.display())]
    Timeout { socket: PathBuf },
    /// Another I/O failure on the socket.
    #[error("{}: cannot ask tailscaled: {source}", socket.display())]
    Io {
        socket: PathBuf,
        source: std::io::Error,
    },
    /// The reply is not a status reply.
    #[error("{}: tailscaled's reply is malformed: {what}", socket.display())]
    Malformed { socket: PathBuf, what: &'static str },
    /// tailscaled refused the request.
    #[error("{}: tailscaled answered HTTP {status}", socket.display())]
    Status { socket: PathBuf, status: u16 },
    /// `--after-join` gave up waiting.
    #[error(
        "{}: tailscaled did not report Running within {waited} (last: {last}); the key is kept",
        socket.display()
    )]
    NotRunning {
        socket: PathBuf,
        waited: String,
        last: String,
    },
}

impl TailscaledError {
    fn io(socket: &Path, e: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let socket = socket.to_path_buf();
        match e.kind() {
            K::NotFound | K::ConnectionRefused => Self::Absent { socket },
            K::WouldBlock | K::TimedOut => Self::Timeout { socket },
            _ => Self::Io { socket, source: e },
        }
    }
}

/// tailscaled's backend state, asked once within `timeout`.
pub fn backend_state(socket: &Path, timeout: Duration) -> Result<BackendState, TailscaledError> {
    let reply = http::get(socket, STATUS_PATH, timeout)?;
    if reply.status != 200 {
        return Err(TailscaledError::Status {
            socket: socket.to_path_buf(),
            status: reply.status,
        });
    }
    #[derive(serde::Deserialize)]
    struct Status {
        #[serde(rename = "BackendState")]
        backend_state: String,
    }
    let malformed = |what| TailscaledError::Malformed {
        socket: socket.to_path_buf(),
        what,
    };
    let status: Status =
        serde_json::from_slice(&reply.body).map_err(|_| malformed("not a status object"))?;
    BackendState::parse(&status.backend_state).ok_or_else(|| malformed("unknown BackendState"))
}

/// Waits until tailscaled reports `Running`, asking again with backoff (0.25 s doubling to 2 s)
/// while it is absent, slow or in another state. Returns how long it took.
pub fn wait_running(socket: &Path, timeout: Duration) -> Result<Duration, TailscaledError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(250);
    let mut last = String::new();
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        let budget = TIMEOUT.min(left.max(Duration::from_millis(1)));
        match backend_state(socket, budget) {
            Ok(BackendState::Running) => return Ok(start.elapsed()),
            Ok(state) => last = state.as_str().to_string(),
            // A poll the deadline cut short says nothing new about tailscaled: report the last
            // state it did answer (the failure itself when it never answered).
            Err(_) if budget < TIMEOUT && !last.is_empty() => {}
            Err(e) => last = e.to_string(),
        }
        crate::log::debug(format!("waiting for tailscaled to be Running: {last}"));
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(TailscaledError::NotRunning {
                socket: socket.to_path_buf(),
                waited: humantime::format_duration(timeout).to_string(),
                last,
            });
        }
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}
