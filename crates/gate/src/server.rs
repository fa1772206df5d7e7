//! The accept loop: HTTP/1.1 with a header-read timeout (which also closes
//! kept-alive connections left idle), and a cap on open connections that
//! keeps the gate reachable. At the cap, the oldest connection that has not
//! sent a byte yet is closed to make room; when every open connection is
//! busy, the newcomer gets a 503 with `Retry-After` at once instead of
//! waiting in the kernel's backlog.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

use crate::limits::ServeLimits;

/// One open connection, as the cap sees it.
struct Slot {
    /// It sent at least one byte: a caller, not (yet) an idle squatter.
    spoke: AtomicBool,
    /// Closes the connection.
    evict: Notify,
}

#[derive(Default)]
struct Slots {
    /// Open connections, oldest first.
    open: Mutex<VecDeque<Arc<Slot>>>,
}

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Slot>>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A slot for a new connection, or `None` when the cap is reached and
    /// no silent connection can make room.
    fn admit(&self, max: usize) -> Option<Arc<Slot>> {
        let mut open = self.lock();
        if open.len() >= max {
            let silent = open.iter().position(|s| !s.spoke.load(Ordering::Acquire))?;
            if let Some(old) = open.remove(silent) {
                old.evict.notify_one();
            }
        }
        let slot = Arc::new(Slot {
            spoke: AtomicBool::new(false),
            evict: Notify::new(),
        });
        open.push_back(slot.clone());
        Some(slot)
    }

    fn release(&self, slot: &Arc<Slot>) {
        self.lock().retain(|s| !Arc::ptr_eq(s, slot));
    }
}

/// The stream, noting when its peer first speaks.
struct Tracked {
    inner: TcpStream,
    slot: Arc<Slot>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.slot.spoke.store(true, Ordering::Release);
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The answer to a connection over the cap, written without waiting.
fn busy_response() -> Vec<u8> {
    let body = r#"{"error":{"code":"unavailable","message":"the gate has too many open connections; try again"}}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serves `app` on `listener` under `limits` until `shutdown` resolves,
/// then lets open requests finish.
pub async fn serve_limited(
    listener: TcpListener,
    app: axum::Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Slots::default());
    let busy = busy_response();
    // Closed when the gate stops: connections finish their request and go.
    let (stop_tx, stop_rx) = watch::channel(());
    // Every connection holds a receiver; the loop waits for all to drop.
    let (done_tx, done_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    let max = limits.max_connections.max(1);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off a
                    // little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = slots.admit(max) else {
            let _ = stream.try_write(&busy);
            tracing::warn!(%peer, max, "connection refused: too many open connections");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(Tracked {
            inner: stream,
            slot: slot.clone(),
        });
        let service = TowerToHyperService::new(app.clone());
        let mut stop = stop_rx.clone();
        let done = done_rx.clone();
        let slots = slots.clone();
        let header_timeout = limits.header_timeout;
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder.serve_connection(io, service).with_upgrades();
            let mut conn = std::pin::pin!(conn);
            let mut stopping = false;
            loop {
                tokio::select! {
                    r = conn.as_mut() => {
                        if let Err(e) = r {
                            tracing::debug!(%peer, error = %e, "connection ended");
                        }
                        break;
                    }
                    () = slot.evict.notified() => {
                        tracing::debug!(%peer, "closed a silent connection to make room");
                        break;
                    }
                    changed = stop.changed(), if !stopping => {
                        let _ = changed;
                        stopping = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
            slots.release(&slot);
            drop(done);
        });
    }
    drop(listener);
    drop(stop_tx);
    drop(done_rx);
    // Wait for open connections to finish their requests.
    done_tx.closed().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn at_the_cap_the_oldest_silent_connection_makes_room_else_none() {
        let slots = Slots::default();
        let a = slots.admit(2).unwrap();
        let b = slots.admit(2).unwrap();
        a.spoke.store(true, Ordering::Release);
        // `b` never spoke: it is closed for `c`.
        let c = slots.admit(2).unwrap();
        assert_eq!(slots.lock().len(), 2);
        assert!(!slots.lock().iter().any(|s| Arc::ptr_eq(s, &b)));
        c.spoke.store(true, Ordering::Release);
        // Everyone speaks: nothing to close, the newcomer is refused.
        assert!(slots.admit(2).is_none());
        slots.release(&a);
        assert!(slots.admit(2).is_some());
    }

    #[test]
    fn the_busy_answer_is_a_503_with_retry_after_and_the_error_shape() {
        let r = String::from_utf8(busy_response()).unwrap();
        assert!(r.starts_with("HTTP/1.1 503 "));
        assert!(r.contains("retry-after: 1\r\n"));
        let body = r.split("\r\n\r\n").nth(1).unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "unavailable");
    }
}
