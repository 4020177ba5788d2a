//! `TcpProxy`: a TCP proxy the test controls, put between Warden and its
//! database to simulate failures without touching the machine's database
//! server.
//!
//! - [`TcpProxy::cut`]: the database goes away, as when its process dies:
//!   every open connection is closed and new ones are refused (the port
//!   stops listening).
//! - [`TcpProxy::blackhole`]: the network drops everything, as in a
//!   partition: open connections stay open but no byte passes, and new ones
//!   are accepted and then hear nothing.
//! - [`TcpProxy::restore`]: back to normal (connections that were frozen in
//!   a black hole are closed; new ones are forwarded).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Forward,
    Blackhole,
    Cut,
}

pub struct TcpProxy {
    pub port: u16,
    target: SocketAddr,
    mode: watch::Sender<Mode>,
    /// Bumped to close every open connection.
    generation: watch::Sender<u64>,
    listener: Mutex<Option<JoinHandle<()>>>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl TcpProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `target`.
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = TcpProxy {
            port,
            target,
            mode: watch::channel(Mode::Forward).0,
            generation: watch::channel(0).0,
            listener: Mutex::new(None),
            connections: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let target = self.target;
        let mode = self.mode.subscribe();
        let generation = self.generation.subscribe();
        let connections = self.connections.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mode = mode.clone();
                let generation = generation.clone();
                let conn = tokio::spawn(relay(client, target, mode, generation));
                let mut all = connections.lock().unwrap();
                all.retain(|c| !c.is_finished());
                all.push(conn);
            }
        });
        *self.listener.lock().unwrap() = Some(task);
    }

    fn close_all(&self) {
        self.generation.send_modify(|g| *g += 1);
        for c in self.connections.lock().unwrap().drain(..) {
            c.abort();
        }
    }

    /// Closes every connection and stops listening (connections refused).
    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
        if let Some(l) = self.listener.lock().unwrap().take() {
            l.abort();
        }
        self.close_all();
    }

    /// Passes no byte, on open or new connections, until [`Self::restore`].
    pub fn blackhole(&self) {
        self.mode.send_replace(Mode::Blackhole);
    }

    /// Forwards again, on the same port.
    pub async fn restore(&self) {
        let was = self.mode.send_replace(Mode::Forward);
        match was {
            Mode::Cut => {
                // The port was closed: listen on it again. SO_REUSEADDR
                // (tokio sets it) lets us rebind at once.
                let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
                self.serve(listener);
            }
            Mode::Blackhole => self.close_all(),
            Mode::Forward => {}
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        if let Some(l) = self.listener.lock().unwrap().take() {
            l.abort();
        }
        for c in self.connections.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

/// Copies both ways while the mode is `Forward`; holds still while it is
/// `Blackhole`; ends when the connection generation changes.
async fn relay(
    mut client: TcpStream,
    target: SocketAddr,
    mut mode: watch::Receiver<Mode>,
    mut generation: watch::Receiver<u64>,
) {
    let born = *generation.borrow_and_update();
    // Wait until forwarding is allowed before even connecting upstream.
    loop {
        if *generation.borrow() != born {
            return;
        }
        match *mode.borrow_and_update() {
            Mode::Forward => break,
            Mode::Cut => return,
            Mode::Blackhole => {}
        }
        tokio::select! {
            _ = mode.changed() => {}
            _ = generation.changed() => return,
        }
    }
    let Ok(mut server) = TcpStream::connect(target).await else {
        let _ = client.shutdown().await;
        return;
    };
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let mut cbuf = vec![0u8; 16 * 1024];
    let mut sbuf = vec![0u8; 16 * 1024];
    use tokio::io::AsyncReadExt;
    loop {
        if *mode.borrow_and_update() == Mode::Blackhole {
            // Hold everything until the mode changes or we are closed.
            tokio::select! {
                _ = mode.changed() => continue,
                _ = generation.changed() => return,
            }
        }
        tokio::select! {
            n = cr.read(&mut cbuf) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => if sw.write_all(&cbuf[..n]).await.is_err() { return },
            },
            n = sr.read(&mut sbuf) => match n {
                Ok(0) | Err(_) => return,
                Ok(n) => if cw.write_all(&sbuf[..n]).await.is_err() { return },
            },
            _ = mode.changed() => {}
            _ = generation.changed() => return,
        }
    }
}
