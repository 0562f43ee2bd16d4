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

use mskbench_kafka::{Auth, ConnectError, Connection, KafkaContext, wait_for_metadata};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
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
    /// Whether the broker refused the connection's security settings, or
    /// none answered: nothing else will connect either.
    pub refused: bool,
}

/// Creates `topic` with `partitions` partitions (replication 1) unless it
/// exists, connecting as `connection` says. `extra` carries other client
/// settings (`-X`); the producer-only ones among them are left out.
pub async fn ensure_topic(
    connection: &Connection,
    topic: &str,
    partitions: i32,
    extra: &[(String, String)],
) -> Result<(), TopicError> {
    let brokers = &connection.brokers;
    let fail =
        |detail: String| TopicError { topic: topic.to_owned(), brokers: brokers.to_owned(), detail, refused: false };
    let refuse = |detail: String| TopicError { refused: true, ..fail(detail) };
    let mut config = connection.client_config();
    for (k, v) in extra {
        // Producer-only settings make the admin client refuse to start.
        if is_client_setting(k) {
            config.set(k, v);
        }
    }
    // Look first: some brokers (librdkafka's mock cluster, locked-down
    // clusters) do not answer CreateTopics for a topic they already have.
    match exists(config.clone(), connection, topic).await {
        Ok(true) => return Ok(()),
        Ok(false) => {}
        // Settings that can never connect: creation would only time out.
        Err(refusal) => return Err(refuse(refusal)),
    }
    let admin: AdminClient<KafkaContext> =
        config.create_with_context(connection.context("admin")).map_err(|e| fail(e.to_string()))?;
    connection.auth.prime(admin.inner());
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let created = admin.create_topics([&new_topic], &options);
    // A refusal (TLS, SASL) shows in the context, not in the admin call's
    // answer, which would wait out the request timeout.
    let results = tokio::select! {
        results = created => results.map_err(|e| fail(e.to_string()))?,
        refusal = refused(&connection.auth) => return Err(refuse(refusal)),
    };
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(fail(format!("{name}: {code}"))),
        }
    }
    Ok(())
}

/// Whether the broker's metadata lists `topic` with partitions: `Ok(false)`
/// when it does not (or the client cannot be built: creation then says
/// why), `Err` with the reason when the broker refused the settings or
/// none answered.
async fn exists(config: ClientConfig, connection: &Connection, topic: &str) -> Result<bool, String> {
    let wanted = topic.to_owned();
    let context = connection.context("metadata");
    let auth = connection.auth.clone();
    tokio::task::spawn_blocking(move || {
        let Ok(client) = config.create_with_context::<_, BaseConsumer<KafkaContext>>(context) else {
            return Ok(false);
        };
        auth.prime(client.client());
        let pump = || {
            let _ = client.poll(Duration::ZERO);
        };
        match wait_for_metadata(client.client(), Some(&wanted), Duration::from_secs(10), &auth, pump) {
            Ok(metadata) => Ok(metadata
                .topics()
                .iter()
                .any(|t| t.name() == wanted && t.error().is_none() && !t.partitions().is_empty())),
            Err(ConnectError::Refused(refusal)) => Err(refusal),
            // No broker answered at all: creating the topic would only
            // time out too, and so would every client after it. librdkafka
            // says no more than "all brokers down" for a plaintext client
            // on a TLS listener, so the hint names the protocol.
            Err(ConnectError::Timeout { waited, last }) => Err(format!(
                "no broker answered a metadata request within {waited:?} ({last}); check the address and \
                 security.protocol (MSK serves plaintext on 9092, TLS on 9094, SCRAM on 9096, IAM on 9098)"
            )),
        }
    })
    .await
    .unwrap_or(Ok(false))
}

/// Resolves with the refusal once `auth` has recorded one.
async fn refused(auth: &Auth) -> String {
    loop {
        if let Some(refusal) = auth.refused() {
            return refusal.to_owned();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Settings every librdkafka client accepts (connection, debug; security
/// comes with the [`Connection`]);
/// the rest are producer settings an admin client must not get.
fn is_client_setting(key: &str) -> bool {
    ["socket.", "client.", "broker.", "debug", "api.version", "reconnect."].iter().any(|p| key.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_client_settings_reach_the_admin_client() {
        for key in ["debug", "socket.timeout.ms", "client.id"] {
            assert!(is_client_setting(key), "{key}");
        }
        for key in ["acks", "linger.ms", "enable.idempotence", "message.timeout.ms", "compression.type"] {
            assert!(!is_client_setting(key), "{key}");
        }
    }
}
