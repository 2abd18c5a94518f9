//! The seed's synchronous client style: no async code on the client side. A blocking
//! client connects over TCP to an async server, sends requests (a handler's failure is
//! an error, never a forever-blocked caller) and fire-and-forget messages.
//!
//! Run: `cargo run -p netcore --example app_blocking`

use netcore::blocking::Client;
use netcore::{Endpoint, RemoteError, Router};
use std::time::Duration;

fn main() -> Result<(), netcore::AppError> {
    // The server runs on its own runtime thread; the client code below is plain sync.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (server, addr) = rt.block_on(async {
        let app = Router::new()
            .route(
                "message1",
                |s: String| async move { format!("processed {s}") },
            )
            .route("broken", || async {
                Err::<String, _>(RemoteError::handler("handler failed"))
            })
            .route(
                "log",
                |s: String| async move { println!("server log: {s}") },
            );
        let server = Endpoint::new(app);
        let addr = server.listen("tcp://127.0.0.1:0").await?;
        Ok::<_, netcore::AppError>((server, addr.to_string()))
    })?;

    let client = Client::connect(&addr)?;
    println!("{}", client.request("message1", "First message")?.text()?);
    match client.request("broken", "") {
        Ok(_) => println!("unexpected success"),
        Err(e) => println!("the caller is told: {e}"),
    }
    client.send("log", "fire and forget")?;
    std::thread::sleep(Duration::from_millis(50));
    client.close(Duration::from_secs(1));
    rt.block_on(server.stop(Duration::from_secs(1)));
    Ok(())
}
