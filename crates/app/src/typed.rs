//! [`Typed<T>`]: typed binary messages of `netcore-schema` ([`TypedMessage`]) as request
//! and response bodies (feature `schema`, on by default).
//!
//! A typed body is the message's payload as `TypedMessage::encode` writes it; the
//! header [`TYPE_HEADER`] (`netcore-type`) carries its type id, and an extractor
//! refuses a body announced as another type.

use bytes::Bytes;
use netcore_schema::TypedMessage;

use crate::endpoint::{Outgoing, Reply};
use crate::error::{codes, AppError};
use crate::extract::FromRequest;
use crate::request::Request;
use crate::response::{IntoResponse, Response};

/// Metadata header with the type id of a typed body (decimal).
///
/// ```
/// assert_eq!(netcore::TYPE_HEADER, "netcore-type");
/// ```
pub const TYPE_HEADER: &str = "netcore-type";

/// A typed message body: extractor (decodes the request) and response (encodes it).
///
/// ```
/// use netcore::{Typed, Router, Request};
/// netcore_schema::message! {
///     /// A reading.
///     #[derive(Debug, PartialEq)]
///     pub struct Reading = 4 {
///         /// Millidegrees.
///         pub value: i32 [">i"],
///     }
/// }
/// async fn double(Typed(r): Typed<Reading>) -> Typed<Reading> {
///     Typed(Reading { value: r.value * 2 })
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let resp = Router::new().route("double", double).call(Request::new("double", vec![0, 0, 0, 21])).await;
/// assert_eq!(resp.body_bytes().unwrap().as_ref(), &[0, 0, 0, 42]);
/// assert_eq!(resp.headers().get_str("netcore-type"), Some("4"));
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Typed<T>(pub T);

impl<T: TypedMessage> FromRequest for Typed<T> {
    async fn from_request(req: &mut Request) -> Result<Self, Response> {
        if let Some(id) = req.headers().get_str(TYPE_HEADER) {
            if id.trim().parse::<u64>().ok() != Some(T::TYPE_ID) {
                return Err(Response::error(
                    codes::BAD_REQUEST,
                    format!(
                        "body is message type {id}, this route takes {} (type {})",
                        T::NAME,
                        T::TYPE_ID
                    ),
                ));
            }
        }
        let bytes = Bytes::from_request(req).await?;
        T::decode(&bytes).map(Typed).map_err(|e| {
            Response::error(
                codes::BAD_REQUEST,
                format!("body is not a valid {}: {e}", T::NAME),
            )
        })
    }
}

impl<T: TypedMessage> IntoResponse for Typed<T> {
    fn into_response(self) -> Response {
        let mut out = Vec::with_capacity(T::FIXED_SIZE.unwrap_or(64));
        match self.0.encode(&mut out) {
            Ok(()) => Response::new(out).with_header(TYPE_HEADER, T::TYPE_ID.to_string()),
            Err(e) => Response::error(
                codes::INTERNAL,
                format!("could not encode {}: {e}", T::NAME),
            ),
        }
    }
}

impl Outgoing {
    /// Sends `message` as a typed request and waits for the reply.
    ///
    /// ```
    /// # netcore_schema::message! { pub struct Ping = 9 { pub n: u8 [">B"], } }
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let ep = netcore::Endpoint::new(netcore::Router::new());
    /// let r = ep.message("ping").typed(&Ping { n: 1 }).await;
    /// assert!(r.is_err()); // no connection
    /// # }
    /// ```
    pub fn typed<T: TypedMessage>(
        self,
        message: &T,
    ) -> impl std::future::Future<Output = Result<Reply, AppError>> + Send + 'static {
        let mut out = Vec::with_capacity(T::FIXED_SIZE.unwrap_or(64));
        let encoded = message.encode(&mut out).map_err(|e| AppError::Codec {
            action: "encode the typed request",
            message: e.to_string(),
        });
        async move {
            encoded?;
            self.header(TYPE_HEADER, T::TYPE_ID.to_string())
                .request(out)
                .await
        }
    }
}

impl Reply {
    /// The body decoded as the typed message `T`.
    ///
    /// ```no_run
    /// # netcore_schema::message! { pub struct Pong = 10 { pub n: u8 [">B"], } }
    /// # async fn f(r: netcore::Reply) -> Result<(), netcore::AppError> {
    /// let pong: Pong = r.typed().await?;
    /// # Ok(()) }
    /// ```
    pub async fn typed<T: TypedMessage>(self) -> Result<T, AppError> {
        let b = self.bytes().await?;
        T::decode(&b).map_err(|e| AppError::Codec {
            action: "decode the typed reply",
            message: e.to_string(),
        })
    }
}
