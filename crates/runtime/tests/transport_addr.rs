//! Text addresses: parsing, typed errors, and Display round trips.

use std::time::Duration;

use netcore_runtime::transport::{
    AddrParseError, DataBits, FlowControl, Parity, SimConfig, StopBits, TransportAddr,
};

fn parse(s: &str) -> TransportAddr {
    s.parse()
        .unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

#[test]
fn round_trips() {
    let cases = [
        "tcp://127.0.0.1:7000",
        "tcp://localhost:0",
        "tcp://[::1]:7000",
        "tcp://127.0.0.1:7000?nodelay=false&notsent_lowat=16384",
        "tls://example.com:7443?ca=/etc/ca.pem&cert=/etc/c.pem&key=/etc/k.pem&server_name=example.org",
        "unix:///tmp/x.sock",
        "unix:///tmp/with%20space%3Fand%26.sock",
        "serial:///dev/ttyUSB0?baud=115200&parity=none&flow=none&data_bits=8&stop_bits=1",
        "serial:///dev/ttyS1?baud=9600&parity=even&flow=hardware&data_bits=7&stop_bits=2",
        "stdio:",
        "mem://a",
        "mem://a?buffer=10",
        "sim://link?rate=11520&latency=1ms&drop=0.0001&flip=0.0002&insert=0.0003&seed=7&buffer=4096",
        "sim://x?latency=250us",
        "sim://x?latency=3s",
        "sim://x?latency=17ns",
    ];
    for text in cases {
        let a = parse(text);
        assert_eq!(a.to_string(), text, "display of {text:?}");
        assert_eq!(parse(&a.to_string()), a);
    }
}

#[test]
fn fields_are_parsed() {
    let TransportAddr::Serial(c) =
        parse("serial:///dev/ttyS1?baud=9600&parity=odd&flow=software&data_bits=5&stop_bits=2")
    else {
        panic!("serial expected")
    };
    assert_eq!(c.path, "/dev/ttyS1");
    assert_eq!(c.baud, 9600);
    assert_eq!(c.parity, Parity::Odd);
    assert_eq!(c.flow, FlowControl::Software);
    assert_eq!(c.data_bits, DataBits::Five);
    assert_eq!(c.stop_bits, StopBits::Two);
    // 1 start + 5 data + 1 parity + 2 stop = 9 bits per byte.
    assert_eq!(c.bytes_per_sec(), 1066);

    let TransportAddr::Serial(d) = parse("serial:///dev/ttyACM0") else {
        panic!("serial expected")
    };
    assert_eq!(d.baud, 115_200);
    assert_eq!(d.bytes_per_sec(), 11_520);

    let TransportAddr::Sim(s) = parse("sim://l?rate=1000&latency=5ms&drop=0.5&seed=3") else {
        panic!("sim expected")
    };
    assert_eq!(s.name, "l");
    assert_eq!(s.config.rate_bytes_per_sec, 1000);
    assert_eq!(s.config.one_way_latency, Duration::from_millis(5));
    assert_eq!(s.config.drop_prob, 0.5);
    assert_eq!(s.config.seed, 3);

    let TransportAddr::Tcp(t) = parse("tcp://[::1]:80") else {
        panic!("tcp expected")
    };
    assert_eq!(t.host, "::1");
    assert_eq!(t.port, 80);
    assert!(t.options.nodelay);

    let TransportAddr::Unix(u) = parse("unix:///tmp/a%20b.sock") else {
        panic!("unix expected")
    };
    assert_eq!(u.path, std::path::PathBuf::from("/tmp/a b.sock"));

    assert_eq!(parse("STDIO:"), TransportAddr::Stdio);
    assert_eq!(parse("  tcp://h:1  "), parse("tcp://h:1"));
}

#[test]
fn errors_are_typed_and_helpful() {
    let err = |s: &str| s.parse::<TransportAddr>().unwrap_err();

    let e = err("127.0.0.1:7000");
    assert!(matches!(e, AddrParseError::MissingScheme { .. }), "{e:?}");
    let e = err("localhost:7000");
    assert!(matches!(e, AddrParseError::MissingScheme { .. }), "{e:?}");
    let e = err("localhost");
    assert!(matches!(e, AddrParseError::MissingScheme { .. }), "{e:?}");
    assert!(e.to_string().contains("tcp://127.0.0.1:7000"));
    let e = err("udp://1.2.3.4:5");
    assert!(matches!(&e, AddrParseError::UnknownScheme { scheme, .. } if scheme == "udp"));

    for bad in [
        "tcp://127.0.0.1",
        "tcp://:80",
        "tcp://h:99999",
        "tcp://::1:80",
        "tcp://[::1",
    ] {
        let e = err(bad);
        assert!(
            matches!(e, AddrParseError::BadHostPort { .. }),
            "{bad}: {e:?}"
        );
        assert!(e.to_string().contains("e.g. tcp://"), "{e}");
    }
    let e = err("tcp://h:1?nodelay=maybe");
    assert!(
        matches!(&e, AddrParseError::BadOption { key, .. } if key == "nodelay"),
        "{e:?}"
    );
    let e = err("tcp://h:1?colour=blue");
    assert!(matches!(&e, AddrParseError::UnknownOption { key, .. } if key == "colour"));
    assert!(e.to_string().contains("notsent_lowat"));

    let e = err("serial://");
    assert!(matches!(e, AddrParseError::MissingPath { .. }));
    assert!(e.to_string().contains("serial:///dev/ttyUSB0?baud=115200"));
    let e = err("serial:///dev/x?baud=fast");
    assert!(matches!(&e, AddrParseError::BadOption { key, .. } if key == "baud"));
    let e = err("serial:///dev/x?baud=0");
    assert!(matches!(&e, AddrParseError::BadOption { key, .. } if key == "baud"));
    let e = err("serial:///dev/x?parity=mark");
    assert!(e.to_string().contains("none, odd, even"), "{e}");
    let e = err("serial:///dev/x?data_bits=9");
    assert!(matches!(&e, AddrParseError::BadOption { key, .. } if key == "data_bits"));

    let e = err("unix://");
    assert!(matches!(e, AddrParseError::MissingPath { .. }));
    let e = err("unix:///x?mode=1");
    assert!(matches!(e, AddrParseError::UnknownOption { .. }));
    let e = err("stdio:foo");
    assert!(matches!(e, AddrParseError::TrailingText { .. }));
    assert!(e.to_string().contains("stdio:"));

    let e = err("sim://x?drop=1.5");
    assert!(e.to_string().contains("between 0 and 1"), "{e}");
    let e = err("sim://x?latency=5");
    assert!(e.to_string().contains("ns, us, ms or s"), "{e}");
    let e = err("sim://x?buffer=0");
    assert!(matches!(e, AddrParseError::BadOption { .. }));
    let e = err("mem://");
    assert!(matches!(e, AddrParseError::MissingPath { .. }));
    let e = err("mem://x?buffer=");
    assert!(matches!(e, AddrParseError::BadOption { .. }));
    let e = err("unix:///tmp/%zz");
    assert!(matches!(e, AddrParseError::BadOption { .. }));
}

#[test]
fn garbage_never_panics() {
    // Bounded deterministic sweep over short strings built from address-like characters.
    let alphabet: Vec<char> = "tcp:/[]?&=%.1sim".chars().collect();
    let mut state = 0x1234_5678_u64;
    for _ in 0..20_000 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let len = (state >> 60) as usize;
        let mut s = String::new();
        let mut x = state;
        for _ in 0..len {
            s.push(alphabet[(x % alphabet.len() as u64) as usize]);
            x /= alphabet.len() as u64;
        }
        if let Ok(a) = s.parse::<TransportAddr>() {
            assert_eq!(
                a.to_string().parse::<TransportAddr>().ok(),
                Some(a),
                "{s:?}"
            );
        }
    }
}

#[test]
fn sim_config_query_form() {
    let c: SimConfig = "?rate=11520&latency=2ms&drop=0.001&insert=0.002&seed=9&buffer=512"
        .parse()
        .unwrap();
    assert_eq!(c.rate_bytes_per_sec, 11_520);
    assert_eq!(c.one_way_latency, Duration::from_millis(2));
    assert_eq!(c.buffer_limit, 512);
    assert_eq!(c.to_string().parse::<SimConfig>().unwrap(), c);
    assert_eq!("".parse::<SimConfig>().unwrap(), SimConfig::default());
    assert_eq!(SimConfig::default().to_string(), "");
    let e = "rate=fast".parse::<SimConfig>().unwrap_err();
    assert!(matches!(e, AddrParseError::BadOption { .. }), "{e:?}");
}
