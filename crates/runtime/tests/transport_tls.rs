//! TLS over TCP with certificates generated at test time (rcgen). Needs `--features tls`.
#![cfg(feature = "tls")]

use std::path::{Path, PathBuf};
use std::time::Duration;

use netcore_runtime::transport::{
    client_config_from_files, connect, listen, server_config_from_files, tls_connect, TcpAddr,
    TlsListener, TransportAddr, TransportError, TransportKind,
};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(20);

/// A CA plus a server and a client certificate it signed, written as PEM files.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let write = |name: &str, text: String| std::fs::write(dir.path().join(name), text).unwrap();
        write("ca.pem", ca.pem());
        for (who, names) in [
            ("server", vec!["localhost".to_string()]),
            ("client", vec!["client.test".to_string()]),
        ] {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &ca, &ca_key)
                .unwrap();
            write(&format!("{who}.pem"), cert.pem());
            write(&format!("{who}.key"), key.serialize_pem());
        }
        // An unrelated CA, to check that verification really happens.
        let other_key = KeyPair::generate().unwrap();
        let mut other = CertificateParams::new(Vec::<String>::new()).unwrap();
        other.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        write("other-ca.pem", other.self_signed(&other_key).unwrap().pem());
        Pki { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

#[tokio::test]
async fn tls_addresses_connect_and_listen() {
    let pki = Pki::new();
    timeout(LIMIT, async {
        let server_addr: TransportAddr = format!(
            "tls://127.0.0.1:0?cert={}&key={}",
            p(&pki.path("server.pem")),
            p(&pki.path("server.key"))
        )
        .parse()
        .unwrap();
        let mut l = listen(&server_addr).await.unwrap();
        let TransportAddr::Tls(mut bound) = l.local_addr().unwrap() else {
            panic!()
        };
        bound.cert = None;
        bound.key = None;
        bound.ca = Some(pki.path("ca.pem"));
        bound.server_name = Some("localhost".into());
        let client_addr = TransportAddr::Tls(bound);
        let server = tokio::spawn(async move {
            let mut t = l.accept().await.unwrap();
            assert_eq!(t.info().kind, TransportKind::Tls);
            let mut buf = vec![0u8; 100_000];
            t.read_exact(&mut buf).await.unwrap();
            t.write_all(&buf).await.unwrap();
            t.shutdown().await.unwrap();
            (l, t)
        });
        let mut c = connect(&client_addr).await.unwrap();
        assert_eq!(c.info().kind, TransportKind::Tls);
        assert!(c.is_tcp());
        c.set_tcp_notsent_lowat(32 * 1024).unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
        c.write_all(&data).await.unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).await.unwrap();
        assert!(back == data);
        drop(server.await.unwrap());
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn mutual_tls_and_verification_failures() {
    let pki = Pki::new();
    timeout(LIMIT, async {
        let server_cfg = server_config_from_files(
            &pki.path("server.pem"),
            &pki.path("server.key"),
            Some(&pki.path("ca.pem")),
        )
        .unwrap();
        let mut l = TlsListener::bind(&TcpAddr::new("127.0.0.1", 0), server_cfg)
            .await
            .unwrap();
        let port = l.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            // Clients failing the handshake are skipped; the good one gets through.
            let mut t = l.accept().await.unwrap();
            t.write_all(b"welcome").await.unwrap();
            t.flush().await.unwrap();
            t
        });
        let target = TcpAddr::new("127.0.0.1", port);

        // Wrong trust root: the client rejects the server.
        let wrong = client_config_from_files(&pki.path("other-ca.pem"), None).unwrap();
        let err = tls_connect(&target, wrong, "localhost").await.unwrap_err();
        assert!(err.to_string().contains("TLS handshake"), "{err}");

        // No client certificate: the server rejects the client (seen on first read in TLS 1.3).
        let anon = client_config_from_files(&pki.path("ca.pem"), None).unwrap();
        if let Ok(mut t) = tls_connect(&target, anon, "localhost").await {
            let mut buf = [0u8; 1];
            assert!(
                t.read(&mut buf).await.is_err(),
                "server must refuse anonymous client"
            );
        }

        // With a client certificate: accepted.
        let good = client_config_from_files(
            &pki.path("ca.pem"),
            Some((&pki.path("client.pem"), &pki.path("client.key"))),
        )
        .unwrap();
        let mut t = tls_connect(&target, good, "localhost").await.unwrap();
        let mut buf = [0u8; 7];
        t.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"welcome");
        drop(server.await.unwrap());
    })
    .await
    .expect("test timed out");
}

#[tokio::test]
async fn tls_configuration_errors_say_what_to_do() {
    let pki = Pki::new();
    let err = connect(&"tls://127.0.0.1:1".parse().unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("?ca="), "{err}");
    let err = listen(&"tls://127.0.0.1:0".parse().unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cert= and key="), "{err}");
    let err = client_config_from_files(&pki.path("server.key"), None).unwrap_err();
    assert!(matches!(err, TransportError::Tls(_)), "{err:?}");
    assert!(err.to_string().contains("no PEM certificate"), "{err}");
    let err = client_config_from_files(&pki.path("missing.pem"), None).unwrap_err();
    assert!(err.to_string().contains("missing.pem"), "{err}");
    let err =
        server_config_from_files(&pki.path("server.pem"), &pki.path("ca.pem"), None).unwrap_err();
    assert!(err.to_string().contains("private key"), "{err}");
}

#[tokio::test]
async fn silent_client_does_not_block_other_handshakes() {
    let pki = Pki::new();
    timeout(LIMIT, async {
        let cfg = server_config_from_files(&pki.path("server.pem"), &pki.path("server.key"), None)
            .unwrap();
        let mut l = TlsListener::bind(&TcpAddr::new("127.0.0.1", 0), cfg)
            .await
            .unwrap();
        let port = l.local_addr().unwrap().port();
        // Connects over TCP and never says anything.
        let _silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let client_cfg = client_config_from_files(&pki.path("ca.pem"), None).unwrap();
        let target = TcpAddr::new("127.0.0.1", port);
        let (client, server) = tokio::join!(
            tls_connect(&target, client_cfg, "localhost"),
            // Far below the 10 s handshake timeout the silent client could hold.
            timeout(Duration::from_secs(3), l.accept())
        );
        let (mut client, mut server) = (client.unwrap(), server.unwrap().unwrap());
        client.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        server.read_exact(&mut b).await.unwrap();
        assert_eq!(&b, b"x");
    })
    .await
    .expect("test timed out");
}
