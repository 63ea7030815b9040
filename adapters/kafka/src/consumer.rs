//! The consuming side, on a thread of its own: librdkafka's consumer calls back (rebalances,
//! statistics) from inside `poll`, and a rebalance must be able to wait for settlements there.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message as _};
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};
use twinwire_plugin::{Delivery, LogLevel};

use crate::headers::{self, Record};
use crate::offsets::Partition;
use crate::Shared;

/// How long a poll waits for a message (the loop's tick: rewinds and commits happen between).
const POLL: Duration = Duration::from_millis(50);

/// The consumer's context: rebalances drain and commit, statistics report lag.
struct ConsumerCtx {
    shared: Arc<Shared>,
}

impl ClientContext for ConsumerCtx {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.shared.librdkafka_log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.shared.log(
            LogLevel::Warn,
            &format!("librdkafka consumer: {error}: {reason}"),
        );
    }

    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                // -1: not consumed here (or not known yet).
                if *partition >= 0 && p.consumer_lag >= 0 {
                    self.shared.host.metric(
                        "kafka_consumer_lag",
                        &[("topic", topic), ("partition", &partition.to_string())],
                        p.consumer_lag as f64,
                    );
                }
            }
        }
    }
}

impl ConsumerContext for ConsumerCtx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(list) => {
                let partitions = partitions_of(list);
                release(&self.shared, consumer, &partitions);
            }
            Rebalance::Assign(list) => {
                self.shared.log(
                    LogLevel::Info,
                    &format!("assigned {} partitions", list.count()),
                );
            }
            Rebalance::Error(e) => self
                .shared
                .log(LogLevel::Warn, &format!("rebalance failed: {e}")),
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        offsets: &TopicPartitionList,
    ) {
        if let Err(e) = result {
            let partitions = partitions_of(offsets);
            self.shared.state().tracker.commit_failed(&partitions);
            self.shared.log(
                LogLevel::Warn,
                &format!("committing offsets failed (tried again): {e}"),
            );
        }
    }
}

fn partitions_of(list: &TopicPartitionList) -> Vec<Partition> {
    list.elements()
        .iter()
        .map(|e| (e.topic().to_owned(), e.partition()))
        .collect()
}

/// Creates the consumer, subscribes, and starts its thread.
pub(crate) fn start(shared: Arc<Shared>) -> Result<std::thread::JoinHandle<()>, String> {
    let consumer: BaseConsumer<ConsumerCtx> =
        crate::client_config(&shared.config.consumer_properties())
            .create_with_context(ConsumerCtx {
                shared: Arc::clone(&shared),
            })
            .map_err(|e| format!("kafka: cannot create the consumer: {e}"))?;
    let topics = shared.config.topics();
    let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|e| format!("kafka: cannot subscribe to {topics:?}: {e}"))?;
    std::thread::Builder::new()
        .name(format!("twinwire-kafka-{}", shared.config.id))
        .spawn(move || consume(&shared, consumer))
        .map_err(|e| format!("kafka: cannot start the consumer thread: {e}"))
}

/// The consumer loop, until the instance closes: rewind, commit, poll, hand over.
fn consume(shared: &Shared, consumer: BaseConsumer<ConsumerCtx>) {
    let config = &shared.config;
    let mut last_commit = Instant::now();
    let mut window = (Instant::now(), 0u32);
    while !shared.stopping.load(Ordering::Acquire) {
        rewind(shared, &consumer);
        if last_commit.elapsed() >= config.commit_interval {
            commit(shared, &consumer, CommitMode::Async);
            last_commit = Instant::now();
        }
        // Room for more? Otherwise wait for settlements (librdkafka keeps the group alive).
        {
            let state = shared.state();
            if state.tracker.in_flight() >= config.max_in_flight {
                let _ = shared.settled.wait_timeout(state, POLL);
                continue;
            }
        }
        if config.throttling_limit > 0 {
            if window.0.elapsed() >= Duration::from_secs(1) {
                window = (Instant::now(), 0);
            }
            if window.1 >= config.throttling_limit {
                std::thread::sleep(
                    Duration::from_secs(1)
                        .saturating_sub(window.0.elapsed())
                        .min(POLL),
                );
                continue;
            }
        }
        match consumer.poll(POLL) {
            None => {}
            Some(Err(e)) => shared.log(LogLevel::Warn, &format!("consuming failed: {e}")),
            Some(Ok(message)) => {
                window.1 += 1;
                hand_over(shared, &message);
            }
        }
    }
    // Closing: what was handed over gets its time to settle; then the watermark is committed
    // and dropping the consumer leaves the group.
    let all = shared.state().tracker.partitions();
    release(shared, &consumer, &all);
    drop(consumer);
}

/// Seeks the partitions handed back for redelivery.
fn rewind(shared: &Shared, consumer: &BaseConsumer<ConsumerCtx>) {
    let rewinds = std::mem::take(&mut shared.state().rewinds);
    for ((topic, partition), offset) in rewinds {
        if let Err(e) = consumer.seek(
            &topic,
            partition,
            Offset::Offset(offset),
            Duration::from_secs(5),
        ) {
            shared.log(
                LogLevel::Warn,
                &format!("seeking {topic}/{partition} back to {offset} failed: {e}"),
            );
        }
    }
}

/// Commits the partitions whose watermark moved.
fn commit(shared: &Shared, consumer: &BaseConsumer<ConsumerCtx>, mode: CommitMode) {
    let marks = shared.state().tracker.to_commit();
    if marks.is_empty() {
        return;
    }
    let mut list = TopicPartitionList::new();
    for ((topic, partition), offset) in &marks {
        if let Err(e) = list.add_partition_offset(topic, *partition, Offset::Offset(*offset)) {
            shared.log(
                LogLevel::Warn,
                &format!("offset {offset} of {topic}/{partition}: {e}"),
            );
        }
    }
    match consumer.commit(&list, mode) {
        Ok(()) => shared.state().tracker.committed(&marks),
        Err(e) => shared.log(LogLevel::Warn, &format!("committing offsets failed: {e}")),
    }
}

/// Partitions going away (rebalance, shutdown): waits up to `drainTimeout` for their messages
/// to settle, commits their watermark, forgets them.
fn release(shared: &Shared, consumer: &BaseConsumer<ConsumerCtx>, partitions: &[Partition]) {
    let deadline = Instant::now() + shared.config.drain_timeout;
    let mut state = shared.state();
    while state.tracker.pending_in(partitions) > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let pending = state.tracker.pending_in(partitions);
            drop(state);
            shared.log(
                LogLevel::Warn,
                &format!("{pending} messages did not settle in time: they are consumed again"),
            );
            state = shared.state();
            break;
        }
        state = shared
            .settled
            .wait_timeout(state, left)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0;
    }
    drop(state);
    commit(shared, consumer, CommitMode::Sync);
    let mut state = shared.state();
    state.tracker.release(partitions);
    state.rewinds.retain(|(p, _)| !partitions.contains(p));
}

/// Hands a consumed record to the broker, waiting while it answers backpressure.
fn hand_over(shared: &Shared, message: &BorrowedMessage<'_>) {
    let config = &shared.config;
    let topic = message.topic();
    let partition: Partition = (topic.to_owned(), message.partition());
    let source = config.source_of(topic);
    let at_least_once = config.sources.get(source).is_some_and(|s| s.at_least_once);
    let token = shared.tokens.fetch_add(1, Ordering::Relaxed) + 1;
    let record_headers = message
        .headers()
        .map(|h| h.iter().map(|h| (h.key, h.value)).collect())
        .unwrap_or_default();
    let record = Record {
        topic,
        key: message.key(),
        timestamp: message.timestamp().to_millis(),
        headers: record_headers,
        payload: message.payload().unwrap_or_default(),
    };
    let again = shared.state().tracker.consumed(
        &partition,
        message.offset(),
        at_least_once.then_some(token),
    );
    let inbound = headers::inbound(&record, source, again);
    if !inbound.repeated.is_empty() {
        shared.log(
            LogLevel::Debug,
            &format!(
                "headers given more than once, first kept: {:?}",
                inbound.repeated
            ),
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    if headers::expired(&inbound.message, now) {
        shared.log(
            LogLevel::Debug,
            &format!("dropped an expired record at {topic}/{}", message.offset()),
        );
        shared.state().tracker.settled(token, false);
        return;
    }
    let mut wait = Duration::from_millis(1);
    loop {
        match shared.host.deliver(inbound.message.clone(), token) {
            Delivery::Accepted => return,
            Delivery::Backpressure => {
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_millis(100));
            }
            // The broker is closing the connection: not committed, so consumed again later.
            Delivery::Refused => return,
        }
    }
}
