//! Topic creation through Kafka's admin API, on any broker.
//!
//! A producer against a real cluster needs this as much as one against a
//! stand-in: `mskbench produce` creates a missing topic before the first
//! record, and `mskbench run` and `mskbench serve kafka` create theirs on
//! the broker they started. It lives with the producer because it is a
//! Kafka client's job (an rdkafka admin client with the run's security
//! settings), not a stand-in's; `mskbench-sim` only starts brokers.
//!
//! Cost: a metadata request, and a `CreateTopics` request when the topic
//! is missing (up to 20 s of broker time). Start-up only.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;

/// Why a topic could not be created.
#[derive(Debug, thiserror::Error)]
#[error("cannot create topic {topic} on {brokers}: {detail}")]
pub struct TopicError {
    /// The topic asked for.
    pub topic: String,
    /// The bootstrap list asked.
    pub brokers: String,
    /// librdkafka's answer.
    pub detail: String,
}

/// Creates `topic` with `partitions` partitions (replication 1) unless it
/// exists. `extra` carries client settings (`-X`, e.g. SSL or SASL); the
/// producer-only ones among them are left out.
pub async fn ensure_topic(
    brokers: &str,
    topic: &str,
    partitions: i32,
    extra: &[(String, String)],
) -> Result<(), TopicError> {
    let fail = |detail: String| TopicError { topic: topic.to_owned(), brokers: brokers.to_owned(), detail };
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (k, v) in extra {
        // Producer-only settings make the admin client refuse to start.
        if is_client_setting(k) {
            config.set(k, v);
        }
    }
    // Look first: some brokers (librdkafka's mock cluster, locked-down
    // clusters) do not answer CreateTopics for a topic they already have.
    if exists(config.clone(), topic).await {
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> = config.create().map_err(|e| fail(e.to_string()))?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let results = admin.create_topics([&new_topic], &options).await.map_err(|e| fail(e.to_string()))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(fail(format!("{name}: {code}"))),
        }
    }
    Ok(())
}

/// True when the broker's metadata lists `topic` with partitions; false
/// when it does not or cannot be asked (creation then says why).
async fn exists(config: ClientConfig, topic: &str) -> bool {
    let wanted = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let client: BaseConsumer = config.create().ok()?;
        let metadata = client.fetch_metadata(Some(&wanted), Duration::from_secs(10)).ok()?;
        Some(metadata.topics().iter().any(|t| t.name() == wanted && t.error().is_none() && !t.partitions().is_empty()))
    })
    .await
    .ok()
    .flatten()
    .unwrap_or(false)
}

/// Settings every librdkafka client accepts (security, connection, debug);
/// the rest are producer settings an admin client must not get.
fn is_client_setting(key: &str) -> bool {
    ["security.", "ssl.", "sasl.", "socket.", "client.", "broker.", "debug", "api.version", "reconnect."]
        .iter()
        .any(|p| key.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_client_settings_reach_the_admin_client() {
        for key in ["security.protocol", "sasl.mechanism", "ssl.ca.location", "debug", "socket.timeout.ms"] {
            assert!(is_client_setting(key), "{key}");
        }
        for key in ["acks", "linger.ms", "enable.idempotence", "message.timeout.ms", "compression.type"] {
            assert!(!is_client_setting(key), "{key}");
        }
    }
}
