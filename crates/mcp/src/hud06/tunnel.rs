//! Capability tunnels (task protocol §5.1): a loopback listener per capability whose every
//! accepted connection becomes a new connection to the environment's port, opened with
//! `tunnel.open` and then spliced raw. An off-the-shelf HTTP MCP client pointed at the
//! listener thus reaches the environment's own MCP server, as the hud SDK does it.

use super::control::reply_result;
use serde_json::json;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The longest `tunnel.open` reply read (it is one short line).
const MAX_REPLY: usize = 64 * 1024;

/// A listening tunnel; dropping it stops accepting (open connections end with their peers).
pub(crate) struct Tunnel {
    local: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Tunnel {
    /// Listens on an ephemeral loopback port and tunnels each connection to `capability`
    /// of the environment at `control`.
    pub(crate) async fn open(control: SocketAddr, capability: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let local = listener.local_addr()?;
        let capability = capability.to_string();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let capability = capability.clone();
                tokio::spawn(async move {
                    if let Err(error) = splice(client, control, &capability).await {
                        tracing::debug!(%error, capability, "hud 0.6 tunnel ended");
                    }
                });
            }
        });
        Ok(Self { local, accept })
    }

    /// The local address clients connect to.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

/// Opens the tunnel for one client connection and copies bytes both ways until either
/// side closes.
async fn splice(
    mut client: TcpStream,
    control: SocketAddr,
    capability: &str,
) -> Result<(), String> {
    let mut upstream = open_stream(control, capability).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A connection to the environment's port, turned into a raw stream to `capability`.
pub(crate) async fn open_stream(
    control: SocketAddr,
    capability: &str,
) -> Result<TcpStream, String> {
    let mut stream = TcpStream::connect(control)
        .await
        .map_err(|e| format!("could not reach the environment at {control}: {e}"))?;
    let frame = json!({
        "jsonrpc": "2.0", "id": 1, "method": "tunnel.open",
        "params": {"capability": capability}
    });
    let mut line = frame.to_string().into_bytes();
    line.push(b'\n');
    stream.write_all(&line).await.map_err(|e| e.to_string())?;
    // Byte by byte: the service's own bytes follow the reply on the same stream.
    let mut reply = Vec::new();
    loop {
        let byte = stream.read_u8().await.map_err(|e| {
            format!("the environment closed the tunnel to '{capability}' before answering: {e}")
        })?;
        if byte == b'\n' {
            break;
        }
        if reply.len() >= MAX_REPLY {
            return Err(format!(
                "the tunnel.open reply for '{capability}' is too long"
            ));
        }
        reply.push(byte);
    }
    let reply: serde_json::Value = serde_json::from_slice(&reply)
        .map_err(|e| format!("the tunnel.open reply is not JSON: {e}"))?;
    reply_result(&reply).map_err(|e| format!("tunnel.open '{capability}' failed: {e}"))?;
    Ok(stream)
}
