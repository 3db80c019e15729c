//! The runtime glue: TCP and spawning, for the one runtime the features select.
//!
//! Everything else in wsmux is runtime-agnostic (futures traits and futures-timer). With
//! several runtime features on, async-std wins, then smol, then tokio; a tokio user builds
//! with `default-features = false, features = ["tokio"]`.

/// async-std and smol have the same TCP API; one body serves both.
#[cfg(any(feature = "async-std", feature = "smol"))]
macro_rules! futures_io_runtime {
    ($net:path, $spawn:expr) => {
        use $net as net;

        pub(crate) type TcpStream = net::TcpStream;
        pub(crate) type TcpListener = net::TcpListener;

        pub(crate) async fn connect(host: &str, port: u16) -> std::io::Result<TcpStream> {
            let s = TcpStream::connect((host, port)).await?;
            s.set_nodelay(true)?;
            Ok(s)
        }

        pub(crate) async fn bind(addr: &str) -> std::io::Result<TcpListener> {
            TcpListener::bind(addr).await
        }

        pub(crate) async fn accept(
            l: &TcpListener,
        ) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
            let (s, remote) = l.accept().await?;
            s.set_nodelay(true)?;
            Ok((s, remote))
        }

        pub(crate) fn local_addr(l: &TcpListener) -> std::io::Result<std::net::SocketAddr> {
            l.local_addr()
        }

        pub(crate) fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(f: F) {
            let spawn = $spawn;
            spawn(f);
        }
    };
}

#[cfg(feature = "async-std")]
mod imp {
    futures_io_runtime!(async_std::net, |f| {
        async_std::task::spawn(f);
    });
}

#[cfg(all(feature = "smol", not(feature = "async-std")))]
mod imp {
    futures_io_runtime!(smol::net, |f| smol::spawn(f).detach());
}

#[cfg(all(feature = "tokio", not(any(feature = "async-std", feature = "smol"))))]
mod imp {
    use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

    pub(crate) type TcpStream = Compat<tokio::net::TcpStream>;
    pub(crate) type TcpListener = tokio::net::TcpListener;

    pub(crate) async fn connect(host: &str, port: u16) -> std::io::Result<TcpStream> {
        let s = tokio::net::TcpStream::connect((host, port)).await?;
        s.set_nodelay(true)?;
        Ok(s.compat())
    }

    pub(crate) async fn bind(addr: &str) -> std::io::Result<TcpListener> {
        TcpListener::bind(addr).await
    }

    pub(crate) async fn accept(
        l: &TcpListener,
    ) -> std::io::Result<(TcpStream, std::net::SocketAddr)> {
        let (s, remote) = l.accept().await?;
        s.set_nodelay(true)?;
        Ok((s.compat(), remote))
    }

    pub(crate) fn local_addr(l: &TcpListener) -> std::io::Result<std::net::SocketAddr> {
        l.local_addr()
    }

    pub(crate) fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(f: F) {
        tokio::spawn(f);
    }
}

#[cfg(any(feature = "async-std", feature = "smol", feature = "tokio"))]
pub(crate) use imp::*;
