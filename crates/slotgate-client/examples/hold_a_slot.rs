//! Holds a slot for a few seconds, as a call orchestrator would.
//!
//! ```sh
//! cargo run --release -- serve &                       # in one terminal
//! KEY=$(cat slotgate-data/operator.key)
//! curl -s -X POST localhost:7878/v1/orgs -H "Authorization: Bearer $KEY" -d '{"id":"acme","limit":1}'
//! SLOTGATE_KEY=$KEY cargo run -p slotgate-client --example hold_a_slot -- acme agent-a chat 5
//! ```
//! Run it twice at once: the second waits in the queue, printing its position,
//! and gets the slot when the first lets go.

use std::time::Duration;

use slotgate_client::{Acquire, CallType, Client};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [org, agent, call_type, secs] = args.as_slice() else {
        return Err("usage: hold_a_slot ORG AGENT TYPE SECONDS".into());
    };
    let url = std::env::var("SLOTGATE_URL").unwrap_or_else(|_| "http://127.0.0.1:7878".into());
    let key = std::env::var("SLOTGATE_KEY").map_err(|_| "set SLOTGATE_KEY")?;
    let call_type: CallType = call_type.parse()?;
    let client = Client::new(&url, &key);
    let permit = client
        .acquire(
            org,
            Acquire::new(agent, call_type)
                .lease_ttl(Duration::from_secs(15))
                .on_position(|p| println!("queued: position {p}")),
        )
        .await?;
    println!(
        "admitted: call {} in a {} slot",
        permit.id(),
        permit.call().slot.map_or("?", |s| s.as_str())
    );
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs(secs.parse()?)) => {}
        ended = permit.lost() => println!("lost the slot: {:?}", ended.end_reason),
    }
    let ended = permit.release().await?;
    println!("released: {}", ended.end_reason.map_or("?", |r| r.as_str()));
    Ok(())
}
