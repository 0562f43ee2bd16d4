//! ClickEvents as the lab's clickstream producer makes them.
//!
//! Owns the record model of the lab's producer (aws-samples
//! clickstream-producer-for-apache-kafka): per session a device uniform over {mobile, computer, tablet},
//! an ip `66.249.1.` + 0–254, a user id (a new block of 1000 per session,
//! starting at 1000: session k has user `1000·(k+1)`, the reading the
//! benchmark inputs share), and the page state machine starting at
//! `home_page` and ending with a terminal event whose `event_type` and
//! `product_type` are empty. `globalseq` counts events from 1 across the
//! whole producer; `prevglobalseq` is the previous `globalseq` of the same
//! simulated producer thread (0 first). The lab runs 2 threads whose
//! sessions interleave; [`ClickEvents`] simulates `threads` of them and
//! picks, per event, which thread speaks next, uniformly from the seed.
//! The lab's 50–549 ms sleep between sessions is not reproduced: the rate
//! schedule decides when records leave.
//!
//! A fleet of workers (`mskbench produce --workers N`) stays one valid
//! stream: [`ClickEvents::for_worker`] gives worker `i` of `N` every `N`th
//! `globalseq` from `i + 1` and every `N`th user block from block `i`, so
//! no two workers share a sequence number or a user, and when the workers
//! send shares of a count that differ by at most one (the larger shares
//! first) their `globalseq`s together are exactly 1 to the count.
//! [`ModelChecker`] reads the merged topic as it reads one producer's.
//!
//! Boundary: no clock and no I/O. `eventtimestamp` is "epoch ms at send
//! time", so [`ClickEvent::encode`] takes it from the caller at the moment
//! of sending. [`ModelChecker`] is the other half: it reads ClickEvents back
//! (from Avro values, whatever decoded them) and says where a sequence
//! breaks the model, for tests and for `mskbench` users checking a topic.
//!
//! Cost: a few tens of nanoseconds per event to generate and to encode
//! (hand-written Avro, no allocation; see BENCHMARKS.md).

use std::collections::HashMap;

use fake::rand::rngs::StdRng;
use fake::rand::{Rng, SeedableRng};

use crate::avro::{put_long, put_str};

/// The lab's ClickEvent schema (`samples.clickstream.avro.ClickEvent`).
pub const SCHEMA: &str = include_str!("../../core/tests/data/clickevent.avsc");

/// Devices a session is on.
pub const DEVICES: [&str; 3] = ["mobile", "computer", "tablet"];
/// Products a `product_detail` page shows.
pub const PRODUCTS: [&str; 8] =
    ["cell phones", "laptops", "ear phones", "soundbars", "cd players", "AirPods", "video games", "cameras"];
/// The ip prefix of every session.
pub const IP_PREFIX: &str = "66.249.1.";
/// First user id, and the size of the block each session takes.
pub const USER_BLOCK: i32 = 1000;

/// A page of the lab's shop, the session state machine's states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Page {
    /// `home_page`: where every session starts.
    HomePage,
    /// `product_catalog`.
    ProductCatalog,
    /// `product_detail`.
    ProductDetail,
    /// `add_to_cart`.
    AddToCart,
    /// `order`.
    Order,
    /// `remove_from_cart`.
    RemoveFromCart,
    /// `order_checkout`.
    OrderCheckout,
    /// The terminal event: sent with empty `event_type` and `product_type`.
    End,
}

impl Page {
    /// The `event_type` text the page is sent with.
    pub fn event_type(self) -> &'static str {
        match self {
            Page::HomePage => "home_page",
            Page::ProductCatalog => "product_catalog",
            Page::ProductDetail => "product_detail",
            Page::AddToCart => "add_to_cart",
            Page::Order => "order",
            Page::RemoveFromCart => "remove_from_cart",
            Page::OrderCheckout => "order_checkout",
            Page::End => "",
        }
    }

    /// The page an `event_type` text names.
    pub fn from_event_type(text: &str) -> Option<Page> {
        Some(match text {
            "home_page" => Page::HomePage,
            "product_catalog" => Page::ProductCatalog,
            "product_detail" => Page::ProductDetail,
            "add_to_cart" => Page::AddToCart,
            "order" => Page::Order,
            "remove_from_cart" => Page::RemoveFromCart,
            "order_checkout" => Page::OrderCheckout,
            "" => Page::End,
            _ => return None,
        })
    }

    /// Where a user may go from this page; each choice is equally likely.
    pub fn next_pages(self) -> &'static [Page] {
        match self {
            Page::HomePage => &[Page::ProductCatalog],
            Page::ProductCatalog => &[Page::HomePage, Page::ProductDetail],
            Page::ProductDetail => &[Page::ProductCatalog, Page::AddToCart],
            Page::AddToCart => &[Page::ProductCatalog, Page::RemoveFromCart, Page::Order],
            Page::Order => &[Page::OrderCheckout, Page::RemoveFromCart, Page::ProductCatalog],
            Page::RemoveFromCart => &[Page::End, Page::ProductDetail, Page::ProductCatalog],
            Page::OrderCheckout => &[Page::End],
            Page::End => &[],
        }
    }
}

/// One generated event, timestamp aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClickEvent {
    /// Last octet of the ip (`66.249.1.<n>`), 0–254.
    pub ip_octet: u8,
    /// One of [`DEVICES`], fixed for the session.
    pub devicetype: &'static str,
    /// The page this event records.
    pub page: Page,
    /// `N/A`, a product, or empty on the terminal event.
    pub product_type: &'static str,
    /// The session's user, in its producer thread's [`USER_BLOCK`].
    pub userid: i32,
    /// Position in the whole stream, from 1.
    pub globalseq: i64,
    /// `globalseq` of the session's previous event; 0 for its first.
    pub prevglobalseq: i64,
}

impl ClickEvent {
    /// Appends the Avro datum of the event under [`SCHEMA`] to `out`, with
    /// `eventtimestamp` = `timestamp_ms`.
    pub fn encode(&self, timestamp_ms: i64, out: &mut Vec<u8>) {
        let mut ip = [0u8; 16];
        let ip = self.ip_bytes(&mut ip);
        put_str(out, ip);
        put_long(out, timestamp_ms);
        put_str(out, self.devicetype.as_bytes());
        // Unions ["string","null"]: branch 0 is the string.
        out.push(0);
        put_str(out, self.page.event_type().as_bytes());
        out.push(0);
        put_str(out, self.product_type.as_bytes());
        put_long(out, i64::from(self.userid));
        put_long(out, self.globalseq);
        put_long(out, self.prevglobalseq);
    }

    /// The Kafka key: the user id in decimal.
    pub fn key<'b>(&self, buf: &'b mut itoa::Buffer) -> &'b str {
        buf.format(self.userid)
    }

    /// The ip as text.
    pub fn ip(&self) -> String {
        format!("{IP_PREFIX}{}", self.ip_octet)
    }

    /// The `ip` field's text (`66.249.1.N`), written into `buf`.
    pub(crate) fn ip_bytes<'b>(&self, buf: &'b mut [u8; 16]) -> &'b [u8] {
        let prefix = IP_PREFIX.as_bytes();
        buf[..prefix.len()].copy_from_slice(prefix);
        let mut n = prefix.len();
        let mut digits = itoa::Buffer::new();
        for &d in digits.format(self.ip_octet).as_bytes() {
            buf[n] = d;
            n += 1;
        }
        &buf[..n]
    }
}

/// One simulated producer thread: its current session and last `globalseq`.
#[derive(Debug, Clone)]
struct Thread {
    session: Option<Session>,
    last_seq: i64,
}

#[derive(Debug, Clone, Copy)]
struct Session {
    userid: i32,
    devicetype: &'static str,
    ip_octet: u8,
    /// The page the next event shows.
    page: Page,
    product: &'static str,
}

/// The lab producer's event stream, from a seed.
#[derive(Debug, Clone)]
pub struct ClickEvents {
    rng: StdRng,
    threads: Vec<Thread>,
    sessions: u64,
    /// Events generated so far.
    events: i64,
    /// This worker's position in its fleet and the fleet's size: events
    /// and sessions are numbered `k·stride + offset`.
    offset: i64,
    stride: i64,
}

/// Blocks before the user ids wrap (rather than overflow an `i32`).
const USER_BLOCKS: u64 = i32::MAX as u64 / USER_BLOCK as u64 - 1;

impl ClickEvents {
    /// A stream of `threads` interleaved producer threads (the lab: 2); at
    /// least one.
    pub fn new(seed: u64, threads: usize) -> Self {
        ClickEvents::for_worker(seed, threads, 0, 1)
    }

    /// The stream of worker `index` of a fleet of `workers` (at least 1;
    /// `index` below it): every `workers`th `globalseq` from `index + 1`,
    /// every `workers`th user block from block `index`. `seed` is the
    /// worker's own (`fleet::Worker::seed`). `for_worker(s, t, 0, 1)` is
    /// `new(s, t)`.
    pub fn for_worker(seed: u64, threads: usize, index: u32, workers: u32) -> Self {
        let stride = i64::from(workers.max(1));
        ClickEvents {
            rng: StdRng::seed_from_u64(seed),
            threads: vec![Thread { session: None, last_seq: 0 }; threads.max(1)],
            sessions: 0,
            events: 0,
            offset: i64::from(index) % stride,
            stride,
        }
    }

    /// Sessions started so far.
    pub fn sessions(&self) -> u64 {
        self.sessions
    }

    fn new_session(&mut self) -> Session {
        // A new block of 1000 ids per session (this worker's every
        // `stride`th); wraps rather than overflow after two million blocks.
        let block = ((self.sessions * self.stride as u64 + self.offset as u64) % USER_BLOCKS) as i32;
        self.sessions += 1;
        Session {
            userid: USER_BLOCK * (block + 1),
            devicetype: DEVICES[self.rng.random_range(0..DEVICES.len())],
            ip_octet: self.rng.random_range(0..=254u8),
            page: Page::HomePage,
            product: "N/A",
        }
    }

    /// The next event.
    pub fn next_event(&mut self) -> ClickEvent {
        let t = if self.threads.len() == 1 { 0 } else { self.rng.random_range(0..self.threads.len()) };
        let mut session = match self.threads[t].session {
            Some(s) => s,
            None => self.new_session(),
        };
        let globalseq = self.events * self.stride + self.offset + 1;
        self.events += 1;
        let (event_type_page, product_type) =
            if session.page == Page::End { (Page::End, "") } else { (session.page, session.product) };
        let event = ClickEvent {
            ip_octet: session.ip_octet,
            devicetype: session.devicetype,
            page: event_type_page,
            product_type,
            userid: session.userid,
            globalseq,
            prevglobalseq: self.threads[t].last_seq,
        };
        self.threads[t].last_seq = globalseq;
        let choices = session.page.next_pages();
        if choices.is_empty() {
            self.threads[t].session = None;
        } else {
            let next = choices[if choices.len() == 1 { 0 } else { self.rng.random_range(0..choices.len()) }];
            session.product = match next {
                Page::HomePage | Page::ProductCatalog => "N/A",
                Page::ProductDetail => PRODUCTS[self.rng.random_range(0..PRODUCTS.len())],
                _ => session.product,
            };
            session.page = next;
            self.threads[t].session = Some(session);
        }
        event
    }
}

impl Iterator for ClickEvents {
    type Item = ClickEvent;
    fn next(&mut self) -> Option<ClickEvent> {
        Some(self.next_event())
    }
}

/// A ClickEvent as read back: the fields of the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadEvent {
    /// The record's key, as text.
    pub key: Option<String>,
    /// `ip`, dotted.
    pub ip: String,
    /// `eventtimestamp`, milliseconds since the epoch.
    pub eventtimestamp: i64,
    /// `devicetype`.
    pub devicetype: String,
    /// `event_type`; empty or absent on a session's terminal event.
    pub event_type: Option<String>,
    /// `product_type`; empty or absent on a session's terminal event.
    pub product_type: Option<String>,
    /// `userid`.
    pub userid: i32,
    /// `globalseq`.
    pub globalseq: i64,
    /// `prevglobalseq`.
    pub prevglobalseq: i64,
}

impl ReadEvent {
    /// Reads the fields from a decoded JSON object (the transcoder's output
    /// or Avro's `toString`, union branches unwrapped).
    pub fn from_json(key: Option<String>, value: &serde_json::Value) -> Result<ReadEvent, String> {
        let field = |name: &str| value.get(name).ok_or_else(|| format!("field {name} is missing in {value}"));
        let string = |name: &str| {
            field(name)?.as_str().map(str::to_owned).ok_or_else(|| format!("field {name} is not a string in {value}"))
        };
        let opt_string = |name: &str| -> Result<Option<String>, String> {
            let v = field(name)?;
            if v.is_null() {
                return Ok(None);
            }
            // A union may come wrapped as {"string": "..."} (Avro JSON encoding).
            let v = v.get("string").unwrap_or(v);
            v.as_str().map(|s| Some(s.to_owned())).ok_or_else(|| format!("field {name} is not a string in {value}"))
        };
        let long =
            |name: &str| field(name)?.as_i64().ok_or_else(|| format!("field {name} is not an integer in {value}"));
        Ok(ReadEvent {
            key,
            ip: string("ip")?,
            eventtimestamp: long("eventtimestamp")?,
            devicetype: string("devicetype")?,
            event_type: opt_string("event_type")?,
            product_type: opt_string("product_type")?,
            userid: i32::try_from(long("userid")?).map_err(|_| format!("userid out of range in {value}"))?,
            globalseq: long("globalseq")?,
            prevglobalseq: long("prevglobalseq")?,
        })
    }
}

/// Checks that events read back follow the lab's model.
///
/// Feed events in the order one partition holds them (a user's events stay
/// in one partition, in order); partitions may be fed one after another.
/// Per user it follows the page state machine; over everything it checks
/// keys, ips, devices, products and that no `globalseq` repeats.
#[derive(Debug, Default)]
pub struct ModelChecker {
    users: HashMap<i32, (Page, String)>,
    seqs: HashMap<i64, ()>,
    events: u64,
    sessions_ended: u64,
}

impl ModelChecker {
    /// A checker that has seen nothing yet.
    pub fn new() -> Self {
        ModelChecker::default()
    }

    /// Events checked so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Sessions seen to their terminal event.
    pub fn sessions_ended(&self) -> u64 {
        self.sessions_ended
    }

    /// Checks one event; the error says what broke.
    pub fn check(&mut self, e: &ReadEvent) -> Result<(), String> {
        self.events += 1;
        let userid = e.userid.to_string();
        if let Some(key) = &e.key
            && key != &userid
        {
            return Err(format!("key {key:?} is not the user id {}", e.userid));
        }
        let octet = e.ip.strip_prefix(IP_PREFIX).and_then(|s| s.parse::<u8>().ok());
        if !matches!(octet, Some(0..=254)) {
            return Err(format!("ip {:?} is not {IP_PREFIX}0–254", e.ip));
        }
        if !DEVICES.contains(&e.devicetype.as_str()) {
            return Err(format!("devicetype {:?} is not one of {DEVICES:?}", e.devicetype));
        }
        if e.userid < USER_BLOCK || e.userid % USER_BLOCK != 0 {
            return Err(format!("userid {} is not the start of a block of {USER_BLOCK}", e.userid));
        }
        if e.globalseq < 1 || e.prevglobalseq < 0 || e.prevglobalseq >= e.globalseq {
            return Err(format!("globalseq {} / prevglobalseq {} out of order", e.globalseq, e.prevglobalseq));
        }
        if self.seqs.insert(e.globalseq, ()).is_some() {
            return Err(format!("globalseq {} seen twice", e.globalseq));
        }
        let event_type = e.event_type.as_deref().ok_or("event_type is null")?;
        let product = e.product_type.as_deref().ok_or("product_type is null")?;
        let page = Page::from_event_type(event_type).ok_or_else(|| format!("unknown event_type {event_type:?}"))?;
        let expected_product_ok = match page {
            Page::HomePage | Page::ProductCatalog => product == "N/A",
            Page::End => product.is_empty(),
            _ => PRODUCTS.contains(&product),
        };
        if !expected_product_ok {
            return Err(format!("product_type {product:?} does not fit page {event_type:?}"));
        }
        match self.users.get(&e.userid) {
            None => {
                if page != Page::HomePage {
                    return Err(format!("user {} starts at {event_type:?}, not home_page", e.userid));
                }
            }
            Some((prev, prev_product)) => {
                if !prev.next_pages().contains(&page) {
                    return Err(format!("user {}: {:?} cannot follow {:?}", e.userid, event_type, prev.event_type()));
                }
                let carries =
                    matches!(page, Page::AddToCart | Page::Order | Page::RemoveFromCart | Page::OrderCheckout);
                if carries && product != prev_product {
                    return Err(format!(
                        "user {}: {event_type:?} carries {product:?}, previous page had {prev_product:?}",
                        e.userid
                    ));
                }
            }
        }
        if page == Page::End {
            self.sessions_ended += 1;
            self.users.remove(&e.userid);
            // A later session never reuses the block (until it wraps), so
            // a second session of this user would start fresh at home_page.
        } else {
            self.users.insert(e.userid, (page, product.to_owned()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use apache_avro::Schema;
    use mskbench_core::Transcoder;

    use super::*;

    #[test]
    fn same_seed_same_events() {
        let a: Vec<_> = ClickEvents::new(7, 2).take(1000).collect();
        let b: Vec<_> = ClickEvents::new(7, 2).take(1000).collect();
        let c: Vec<_> = ClickEvents::new(8, 2).take(1000).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn encoded_events_decode_and_follow_the_model() {
        let schema = Schema::parse_str(SCHEMA).unwrap();
        let transcoder = Transcoder::compile(&schema).unwrap();
        let mut checker = ModelChecker::new();
        let mut datum = Vec::new();
        let mut json = Vec::new();
        let mut key = itoa::Buffer::new();
        for event in ClickEvents::new(42, 2).take(20_000) {
            datum.clear();
            json.clear();
            event.encode(1_764_240_000_123, &mut datum);
            transcoder.transcode(&datum, &mut json, 1 << 20).unwrap();
            let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
            let read = ReadEvent::from_json(Some(event.key(&mut key).to_owned()), &value).unwrap();
            assert_eq!(read.eventtimestamp, 1_764_240_000_123);
            assert_eq!(read.globalseq, event.globalseq);
            checker.check(&read).unwrap();
        }
        assert!(checker.sessions_ended() > 100, "sessions end: {}", checker.sessions_ended());
    }

    #[test]
    fn encoding_matches_apache_avro() {
        use apache_avro::types::Value;
        let schema = Schema::parse_str(SCHEMA).unwrap();
        let mut events = ClickEvents::new(3, 1);
        for _ in 0..200 {
            let e = events.next_event();
            let mut ours = Vec::new();
            e.encode(99, &mut ours);
            let value = Value::Record(vec![
                ("ip".into(), Value::String(e.ip())),
                ("eventtimestamp".into(), Value::Long(99)),
                ("devicetype".into(), Value::String(e.devicetype.into())),
                ("event_type".into(), Value::Union(0, Box::new(Value::String(e.page.event_type().into())))),
                ("product_type".into(), Value::Union(0, Box::new(Value::String(e.product_type.into())))),
                ("userid".into(), Value::Int(e.userid)),
                ("globalseq".into(), Value::Long(e.globalseq)),
                ("prevglobalseq".into(), Value::Long(e.prevglobalseq)),
            ]);
            let theirs = crate::avro::tests_support::datum(&schema, value).unwrap();
            assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn one_thread_chains_prevglobalseq() {
        let events: Vec<_> = ClickEvents::new(1, 1).take(500).collect();
        assert_eq!(events[0].globalseq, 1);
        assert_eq!(events[0].prevglobalseq, 0);
        assert_eq!(events[0].page, Page::HomePage);
        for w in events.windows(2) {
            assert_eq!(w[1].prevglobalseq, w[0].globalseq);
        }
    }

    /// Three workers with the shares of 1,000 (334, 333, 333): their
    /// events together are one valid stream, globalseq exactly 1 to 1,000,
    /// no user in two workers.
    #[test]
    fn a_fleets_streams_are_one_valid_stream() {
        let schema = Schema::parse_str(SCHEMA).unwrap();
        let transcoder = Transcoder::compile(&schema).unwrap();
        let mut checker = ModelChecker::new();
        let mut seqs = Vec::new();
        let mut users = std::collections::HashMap::new();
        for (index, count) in [(0u32, 334usize), (1, 333), (2, 333)] {
            let mut events = ClickEvents::for_worker(100 + u64::from(index), 2, index, 3);
            for event in events.by_ref().take(count) {
                let (mut datum, mut json) = (Vec::new(), Vec::new());
                event.encode(1, &mut datum);
                transcoder.transcode(&datum, &mut json, 1 << 20).unwrap();
                let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
                checker.check(&ReadEvent::from_json(None, &value).unwrap()).unwrap();
                seqs.push(event.globalseq);
                assert_eq!(*users.entry(event.userid).or_insert(index), index, "user {} in two workers", event.userid);
            }
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=1000).collect::<Vec<i64>>());
        let sole: Vec<_> = ClickEvents::for_worker(5, 2, 0, 1).take(100).collect();
        assert_eq!(sole, ClickEvents::new(5, 2).take(100).collect::<Vec<_>>(), "a fleet of one is the plain stream");
    }

    #[test]
    fn checker_rejects_a_broken_transition() {
        let mut checker = ModelChecker::new();
        let mut e = ReadEvent {
            key: Some("1000".into()),
            ip: "66.249.1.4".into(),
            eventtimestamp: 1,
            devicetype: "mobile".into(),
            event_type: Some("home_page".into()),
            product_type: Some("N/A".into()),
            userid: 1000,
            globalseq: 1,
            prevglobalseq: 0,
        };
        checker.check(&e).unwrap();
        e.event_type = Some("order".into());
        e.product_type = Some("laptops".into());
        e.globalseq = 2;
        e.prevglobalseq = 1;
        assert!(checker.check(&e).unwrap_err().contains("cannot follow"));
    }
}
