//! Serial ports (UART, USB-CDC, pseudo-terminals) through tokio-serial.

use tokio_serial::SerialPortBuilderExt;

use super::{
    DataBits, FlowControl, LinkHint, Parity, SerialConfig, StopBits, Transport, TransportError,
    TransportInfo, TransportKind,
};

/// Opens the serial port described by `config` for async I/O.
///
/// The transport's link hint is [`LinkProfile::Serial`](super::LinkProfile::Serial) with the
/// rate in bytes/s derived from the baud rate and character framing
/// ([`SerialConfig::bytes_per_sec`]). Must be called inside a tokio runtime.
///
/// ```no_run
/// use netcore_runtime::transport::{open_serial, SerialConfig};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let port = open_serial(&SerialConfig::new("/dev/ttyUSB0", 115_200))?;
/// assert_eq!(port.info().link_hint.unwrap().rate_bytes_per_sec, Some(11_520));
/// # Ok(()) }
/// ```
pub fn open_serial(config: &SerialConfig) -> Result<Transport, TransportError> {
    let builder = tokio_serial::new(config.path.as_str(), config.baud)
        .parity(match config.parity {
            Parity::None => tokio_serial::Parity::None,
            Parity::Odd => tokio_serial::Parity::Odd,
            Parity::Even => tokio_serial::Parity::Even,
        })
        .flow_control(match config.flow {
            FlowControl::None => tokio_serial::FlowControl::None,
            FlowControl::Software => tokio_serial::FlowControl::Software,
            FlowControl::Hardware => tokio_serial::FlowControl::Hardware,
        })
        .data_bits(match config.data_bits {
            DataBits::Five => tokio_serial::DataBits::Five,
            DataBits::Six => tokio_serial::DataBits::Six,
            DataBits::Seven => tokio_serial::DataBits::Seven,
            DataBits::Eight => tokio_serial::DataBits::Eight,
        })
        .stop_bits(match config.stop_bits {
            StopBits::One => tokio_serial::StopBits::One,
            StopBits::Two => tokio_serial::StopBits::Two,
        });
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(TransportError::Serial {
            path: config.path.clone(),
            message: "async serial ports must be opened inside a tokio runtime; use \
                      from_blocking with a blocking port handle outside one"
                .into(),
        });
    }
    let port = builder
        .open_native_async()
        .map_err(|e| TransportError::Serial {
            path: config.path.clone(),
            message: e.to_string(),
        })?;
    let info = TransportInfo::new(TransportKind::Serial)
        .with_peer(config.path.clone())
        .with_local(config.path.clone())
        .with_link_hint(LinkHint {
            rate_bytes_per_sec: Some(config.bytes_per_sec()),
            ..LinkHint::serial_baud(config.baud)
        });
    Ok(Transport::new(port, info))
}
