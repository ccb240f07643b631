//! Thread-per-core serving: one thread, runtime and listening socket per worker.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::accept::serve_with;
use super::claim::{probe_free, Claim};
use super::release::give_back_when_quiet;
use super::{AnswerBody, Overload, ServeOptions, Serves};

/// Serves the client listener thread-per-core: `workers` threads, each with its
/// own current-thread tokio runtime, its own listening socket on `addr` (`SO_REUSEPORT`, so
/// the kernel spreads new connections over them) and its own service built by `make` on that
/// thread. A connection lives on the worker that accepted it, with everything its requests
/// touch: no work stealing, no wake-ups on other cores, no shared pool or counter. Nginx and
/// the fastest hyper servers are arranged the same way; one multi-threaded runtime reached
/// only half their throughput per core on 8 cores.
///
/// Only the connection limit is shared (one permit per connection, not per request), so
/// `max_connections` keeps meaning the whole process.
pub struct Workers {
    /// The address actually bound (port 0 picks one free port for every worker).
    pub addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    done: Vec<tokio::sync::oneshot::Receiver<()>>,
}

impl Workers {
    /// Binds every worker's socket now, so a bad address, or one another process listens
    /// on, fails the start, not a thread.
    pub fn bind(addr: SocketAddr, workers: usize) -> std::io::Result<(Bound, SocketAddr)> {
        // A fixed port is claimed and probed before binding; port 0 gets a port nobody
        // listens on, claimed once known.
        let early = if addr.port() == 0 {
            None
        } else {
            let claim = Claim::take(addr)?;
            probe_free(addr)?;
            Some(claim)
        };
        let first = reuseport_listener(addr)?;
        let bound = first.local_addr()?;
        let claim = match early {
            Some(claim) => claim,
            None => Claim::take(bound)?,
        };
        let mut listeners = vec![first];
        for _ in 1..workers.max(1) {
            listeners.push(reuseport_listener(bound)?);
        }
        Ok((
            Bound {
                listeners,
                claim: Arc::new(claim),
            },
            bound,
        ))
    }

    /// Starts one thread per listener.
    pub fn start<F, S, B, O, OB>(
        bound: Bound,
        make: F,
        overload: O,
        opts: ServeOptions,
    ) -> std::io::Result<Self>
    where
        F: Fn() -> S + Send + Sync + 'static,
        S: Serves<B>,
        B: AnswerBody,
        O: Overload<OB>,
        OB: AnswerBody,
    {
        let Bound { listeners, claim } = bound;
        let addr = listeners[0].local_addr()?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let make = Arc::new(make);
        let permits = Arc::new(Semaphore::new(opts.max_connections.max(1)));
        let mut done = Vec::with_capacity(listeners.len());
        // Each worker says once it is ready (runtime built, socket registered) or why not,
        // so `start` returns only when every worker accepts.
        let (ready, readiness) = std::sync::mpsc::channel::<Result<(), String>>();
        let count = listeners.len();
        for (i, listener) in listeners.into_iter().enumerate() {
            let (finished, finished_rx) = tokio::sync::oneshot::channel();
            done.push(finished_rx);
            let (make, overload, opts, permits, ready, claim) = (
                make.clone(),
                overload.clone(),
                opts.clone(),
                permits.clone(),
                ready.clone(),
                claim.clone(),
            );
            let mut stopped = stopped.clone();
            std::thread::Builder::new()
                .name(format!("gw-worker-{i}"))
                .spawn(move || {
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = ready.send(Err(format!("worker {i}: runtime: {e}")));
                            return;
                        }
                    };
                    rt.block_on(async move {
                        let listener = match listener
                            .set_nonblocking(true)
                            .and_then(|()| TcpListener::from_std(listener))
                        {
                            Ok(l) => l,
                            Err(e) => {
                                let _ = ready.send(Err(format!("worker {i}: listener: {e}")));
                                return;
                            }
                        };
                        let service = make();
                        crate::logging::batch_this_thread();
                        tokio::spawn(async {
                            let mut every = tokio::time::interval(Duration::from_millis(100));
                            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                            loop {
                                every.tick().await;
                                crate::logging::flush_this_thread();
                            }
                        });
                        // Gives back what closed connections freed once the worker is quiet.
                        tokio::spawn(give_back_when_quiet());
                        let _ = ready.send(Ok(()));
                        let shutdown = async move {
                            let _ = stopped.wait_for(|s| *s).await;
                        };
                        serve_with(listener, service, overload, opts, permits, shutdown).await;
                    });
                    crate::logging::flush_this_thread();
                    // The address is free for another process once no worker listens.
                    drop(claim);
                    let _ = finished.send(());
                })?;
        }
        drop(ready);
        for _ in 0..count {
            match readiness.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    let _ = stop.send(true);
                    return Err(std::io::Error::other(e));
                }
                Err(_) => {
                    let _ = stop.send(true);
                    return Err(std::io::Error::other(
                        "a worker thread ended while starting",
                    ));
                }
            }
        }
        Ok(Self { addr, stop, done })
    }

    /// Stops accepting on every worker; each finishes its in-flight requests within the grace.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Resolves when every worker has stopped.
    pub async fn wait(self) {
        for d in self.done {
            let _ = d.await;
        }
    }
}

/// The client address, bound by every worker's socket and claimed for this process.
pub struct Bound {
    listeners: Vec<std::net::TcpListener>,
    claim: Arc<Claim>,
}

/// A listening socket that shares its port with the other workers' (`SO_REUSEPORT`). Like
/// std's listener it sets `SO_REUSEADDR`, so a restart can bind while old connections linger in
/// `TIME_WAIT`.
fn reuseport_listener(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    #[cfg(unix)]
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}
