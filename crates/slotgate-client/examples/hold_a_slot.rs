//! Holds a slot for a few seconds, as a call orchestrator would.
//!
//! ```sh
//! cargo run --release -- serve &                       # in one terminal
//! slotgate org create example --limit 1                # from the same directory
//! SLOTGATE_KEY=$(cat slotgate-data/operator.key) \
//!   cargo run -p slotgate-client --example hold_a_slot -- example agent-a chat 5
//! ```
//! Run it twice at once: the second waits in the queue, printing its position
//! at once and whenever it changes, and gets the slot when the first lets go.

use std::process::ExitCode;
use std::time::Duration;

use slotgate_client::{Acquire, CallType, Client};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [org, agent, call_type, secs] = args.as_slice() else {
        return Err("usage: hold_a_slot ORG AGENT TYPE SECONDS".into());
    };
    let url = std::env::var("SLOTGATE_URL").unwrap_or_else(|_| "http://127.0.0.1:7878".into());
    let key = std::env::var("SLOTGATE_KEY").map_err(|_| "set SLOTGATE_KEY to a key of the org")?;
    let call_type: CallType = call_type.parse()?;
    let seconds: f64 = secs
        .parse()
        .map_err(|_| format!("SECONDS must be a number, got {secs:?}"))?;
    let client = Client::new(&url, &key);
    let permit = client
        .acquire(
            org,
            Acquire::new(agent, call_type)
                .lease_ttl(Duration::from_secs(15))
                .on_queue(|q| match q.estimated_wait {
                    Some(w) => println!(
                        "queued: position {}, about {} s to wait",
                        q.position,
                        w.as_secs()
                    ),
                    None => println!("queued: position {}", q.position),
                }),
        )
        .await?;
    println!(
        "admitted: call {} in a {} slot",
        permit.id(),
        permit.call().slot.map_or("?", |s| s.as_str())
    );
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs_f64(seconds)) => {}
        ended = permit.lost() => println!("lost the slot: {}", ended.end_reason.map_or("ended", |r| r.as_str())),
    }
    let ended = permit.release().await?;
    println!("released: {}", ended.end_reason.map_or("?", |r| r.as_str()));
    Ok(())
}
