//! Subjects, versions and schema ids, with compatibility checks and
//! optional persistence. No HTTP here: the service maps these results to
//! Confluent's REST shapes.
//!
//! Identity: a schema is parsed with apache-avro and keyed by its
//! normalized JSON form (apache-avro's `Serialize` of the parsed schema),
//! so whitespace, key order and `{"type":"string"}` versus `"string"` do
//! not mint new ids, while defaults, logical types and aliases — which the
//! Avro parsing canonical form drops but which change how data resolves —
//! do. One id per distinct schema across all subjects, as Confluent does;
//! ids and versions start at 1.
//!
//! Compatibility: BACKWARD means the new schema can read data written with
//! the previous one (`SchemaCompatibility::can_read(old, new)`), FORWARD
//! the reverse, FULL both; `_TRANSITIVE` checks every earlier version
//! instead of only the latest. Only apache-avro's `Compatibility::Full`
//! passes: its `Partial` (a reader missing some writer union branches or
//! enum symbols) can fail on real data, and Java Avro — which Confluent
//! uses — calls that incompatible.
//!
//! Persistence: with a data path every change rewrites the whole state as
//! one JSON file before the change is acknowledged: a temporary file of its
//! own beside it (never the data file or another file, whatever the data
//! file is called), fsync, rename, fsync of the directory; a `kill -9` or a
//! power cut at any point leaves the old state or the new one. A failed
//! write undoes the change from what the change touched (one subject's
//! entry, the lengths of the append-only schema lists), not from a copy of
//! the store. The whole store sits behind one mutex, so concurrent
//! registrations of one schema get one id. Cost: writing O(size of the
//! registry) per change, fine for the tens of schemas a registry holds;
//! reads do not touch the disk.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};

use apache_avro::Schema;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use serde::{Deserialize, Serialize};

/// A compatibility level, by Confluent's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Level {
    /// Any schema may follow any other.
    None,
    /// A new schema reads data written with the previous one.
    Backward,
    /// A new schema reads data written with every earlier one.
    BackwardTransitive,
    /// Data written with a new schema is readable with the previous one.
    Forward,
    /// Data written with a new schema is readable with every earlier one.
    ForwardTransitive,
    /// Backward and forward against the previous schema.
    Full,
    /// Backward and forward against every earlier schema.
    FullTransitive,
}

impl Level {
    /// Confluent's name (`BACKWARD`, `FULL_TRANSITIVE`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "NONE",
            Level::Backward => "BACKWARD",
            Level::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Level::Forward => "FORWARD",
            Level::ForwardTransitive => "FORWARD_TRANSITIVE",
            Level::Full => "FULL",
            Level::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// The level of a Confluent name; `None` for an unknown name.
    pub fn parse(text: &str) -> Option<Level> {
        [
            Level::None,
            Level::Backward,
            Level::BackwardTransitive,
            Level::Forward,
            Level::ForwardTransitive,
            Level::Full,
            Level::FullTransitive,
        ]
        .into_iter()
        .find(|l| l.as_str().eq_ignore_ascii_case(text))
    }

    /// (new reads old, old reads new, against all versions)
    fn rules(self) -> (bool, bool, bool) {
        match self {
            Level::None => (false, false, false),
            Level::Backward => (true, false, false),
            Level::BackwardTransitive => (true, false, true),
            Level::Forward => (false, true, false),
            Level::ForwardTransitive => (false, true, true),
            Level::Full => (true, true, false),
            Level::FullTransitive => (true, true, true),
        }
    }
}

/// A refusal, with Confluent's error code; the HTTP status is derived from it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (error code {code})")]
pub(crate) struct StoreError {
    pub(crate) code: u32,
    pub(crate) message: String,
}

impl StoreError {
    fn new(code: u32, message: impl Into<String>) -> Self {
        StoreError { code, message: message.into() }
    }

    pub(crate) fn subject_not_found(subject: &str) -> Self {
        Self::new(40401, format!("Subject '{subject}' not found."))
    }

    fn version_not_found(subject: &str, version: &str) -> Self {
        Self::new(40402, format!("Version {version} not found for subject '{subject}'."))
    }

    /// The HTTP status Confluent sends with this code.
    pub(crate) fn status(&self) -> u16 {
        match self.code {
            c @ 40000..=59999 => (c / 100) as u16,
            c @ 400..=599 => c as u16,
            _ => 500,
        }
    }
}

/// One registered schema.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredSchema {
    id: u32,
    /// The text as first registered.
    schema: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Subject {
    /// (version, schema id), ascending by version.
    versions: Vec<(u32, u32)>,
    #[serde(default)]
    compatibility: Option<Level>,
}

/// What is written to the data file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct State {
    format: u32,
    compatibility: Level,
    schemas: Vec<StoredSchema>,
    subjects: BTreeMap<String, Subject>,
}

const FORMAT: u32 = 1;

/// A version of a subject, as answered by lookups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VersionInfo {
    pub(crate) subject: String,
    pub(crate) version: u32,
    pub(crate) id: u32,
    pub(crate) schema: String,
}

/// Failures to load or save the data file.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The data file exists but could not be read.
    #[error("cannot read registry data {path}")]
    Read {
        /// The data file.
        path: PathBuf,
        /// Why reading failed.
        source: std::io::Error,
    },
    /// The data file is not one this registry wrote.
    #[error("registry data {path} is not valid: {reason}")]
    Invalid {
        /// The data file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A change could not be saved (so it was not acknowledged).
    #[error("cannot write registry data {path}")]
    Write {
        /// The data file.
        path: PathBuf,
        /// Why writing failed.
        source: std::io::Error,
    },
}

/// The registry's state.
#[derive(Debug)]
pub(crate) struct Store {
    state: State,
    /// Parsed schemas, index `id - 1`.
    parsed: Vec<Schema>,
    /// Normalized form → id.
    by_key: HashMap<String, u32>,
    path: Option<PathBuf>,
}

/// Parses a schema and gives its identity key.
fn parse_schema(text: &str) -> Result<(Schema, String), StoreError> {
    let schema = Schema::parse_str(text).map_err(|e| StoreError::new(42201, format!("Invalid schema: {e}")))?;
    let key = serde_json::to_string(&schema).map_err(|e| StoreError::new(42201, format!("Invalid schema: {e}")))?;
    Ok((schema, key))
}

impl Store {
    /// An empty store, kept in memory only.
    pub(crate) fn in_memory(compatibility: Level) -> Self {
        Store {
            state: State { format: FORMAT, compatibility, schemas: Vec::new(), subjects: BTreeMap::new() },
            parsed: Vec::new(),
            by_key: HashMap::new(),
            path: None,
        }
    }

    /// Opens `path`, or starts empty if it does not exist (it is created on
    /// the first change).
    pub(crate) fn open(path: &Path, compatibility: Level) -> Result<Self, PersistError> {
        let mut store = Store::in_memory(compatibility);
        store.path = Some(path.to_owned());
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(store),
            Err(source) => {
                return Err(PersistError::Read { path: path.to_owned(), source });
            }
        };
        let invalid = |reason: String| PersistError::Invalid { path: path.to_owned(), reason };
        let state: State = serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))?;
        if state.format != FORMAT {
            return Err(invalid(format!("format {} is not {FORMAT}", state.format)));
        }
        for (i, s) in state.schemas.iter().enumerate() {
            if s.id as usize != i + 1 {
                return Err(invalid(format!("schema ids are not 1..n at id {}", s.id)));
            }
            let (schema, key) = parse_schema(&s.schema).map_err(|e| invalid(e.message))?;
            store.parsed.push(schema);
            store.by_key.insert(key, s.id);
        }
        for (name, subject) in &state.subjects {
            if let Some((_, id)) =
                subject.versions.iter().find(|(_, id)| *id as usize > state.schemas.len() || *id == 0)
            {
                return Err(invalid(format!("subject {name} names unknown schema id {id}")));
            }
        }
        store.state = state;
        Ok(store)
    }

    /// Writes the state to the data file so that a crash at any point
    /// leaves the old file or the new one: a temporary file of its own in
    /// the same directory (created anew, so it can be neither the data file
    /// nor anybody else's, whatever the data file is called), fsync, rename
    /// over the data file, then fsync of the directory, without which the
    /// rename itself may not survive a power cut.
    fn save(&self) -> Result<(), PersistError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let write = |path: &Path| -> std::io::Result<()> {
            let text = serde_json::to_vec_pretty(&self.state).map_err(std::io::Error::other)?;
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            let mut tmp = tempfile::Builder::new().prefix(".registry-").suffix(".tmp").tempfile_in(dir)?;
            tmp.write_all(&text)?;
            tmp.as_file().sync_all()?;
            tmp.persist(path).map_err(|e| e.error)?;
            std::fs::File::open(dir)?.sync_all()
        };
        write(path).map_err(|source| PersistError::Write { path: path.clone(), source })
    }

    /// Applies `change`, which touches at most `subject` (and the global
    /// level, and appends schemas), saves, and undoes the change if saving
    /// fails. What is kept for the undo is that subject's entry and the
    /// lengths of the append-only lists, not a copy of the store.
    fn commit<T>(&mut self, subject: Option<&str>, change: impl FnOnce(&mut Self) -> T) -> Result<T, StoreError> {
        let schemas = self.state.schemas.len();
        let level = self.state.compatibility;
        let entry = subject.map(|name| (name.to_owned(), self.state.subjects.get(name).cloned()));
        let out = change(self);
        if let Err(e) = self.save() {
            self.state.schemas.truncate(schemas);
            self.parsed.truncate(schemas);
            self.by_key.retain(|_, id| *id as usize <= schemas);
            self.state.compatibility = level;
            match entry {
                Some((name, Some(before))) => {
                    self.state.subjects.insert(name, before);
                }
                Some((name, None)) => {
                    self.state.subjects.remove(&name);
                }
                None => {}
            }
            return Err(StoreError::new(50001, format!("Error in the backend data store: {e}: {}", source_text(&e))));
        }
        Ok(out)
    }

    pub(crate) fn subjects(&self) -> Vec<String> {
        self.state.subjects.keys().cloned().collect()
    }

    fn subject(&self, name: &str) -> Result<&Subject, StoreError> {
        self.state
            .subjects
            .get(name)
            .filter(|s| !s.versions.is_empty())
            .ok_or_else(|| StoreError::subject_not_found(name))
    }

    fn text(&self, id: u32) -> &str {
        &self.state.schemas[id as usize - 1].schema
    }

    /// The level that applies to `subject`.
    pub(crate) fn effective_level(&self, subject: &str) -> Level {
        self.state.subjects.get(subject).and_then(|s| s.compatibility).unwrap_or(self.state.compatibility)
    }

    /// Why `candidate` may not follow the given versions under `level`, if it may not.
    fn incompatibility(&self, level: Level, candidate: &Schema, versions: &[(u32, u32)]) -> Option<String> {
        let (new_reads_old, old_reads_new, transitive) = level.rules();
        let against = if transitive { versions } else { &versions[versions.len().saturating_sub(1)..] };
        for &(version, id) in against.iter().rev() {
            let old = &self.parsed[id as usize - 1];
            let check =
                |writer: &Schema, reader: &Schema, what: &str| match SchemaCompatibility::can_read(writer, reader) {
                    Ok(Compatibility::Full) => None,
                    Ok(Compatibility::Partial) => Some(format!(
                        "{what} version {version} only partially (missing union branches or enum symbols)"
                    )),
                    Err(e) => Some(format!("{what} version {version}: {e}")),
                };
            if new_reads_old && let Some(why) = check(old, candidate, "the new schema cannot read data written with") {
                return Some(why);
            }
            if old_reads_new
                && let Some(why) = check(candidate, old, "data written with the new schema cannot be read by")
            {
                return Some(why);
            }
        }
        None
    }

    /// Registers `text` under `subject`; the same schema again gets its existing id.
    pub(crate) fn register(&mut self, subject: &str, text: &str) -> Result<u32, StoreError> {
        let (schema, key) = parse_schema(text)?;
        let existing_id = self.by_key.get(&key).copied();
        let versions = self.state.subjects.get(subject).map(|s| s.versions.clone()).unwrap_or_default();
        if let Some(id) = existing_id
            && versions.iter().any(|&(_, v_id)| v_id == id)
        {
            return Ok(id);
        }
        let level = self.effective_level(subject);
        if let Some(why) = self.incompatibility(level, &schema, &versions) {
            return Err(StoreError::new(
                409,
                format!(
                    "Schema being registered is incompatible with an earlier schema for subject \"{subject}\" under {}: {why}",
                    level.as_str()
                ),
            ));
        }
        self.commit(Some(subject), |store| {
            let id = existing_id.unwrap_or_else(|| {
                let id = store.state.schemas.len() as u32 + 1;
                store.state.schemas.push(StoredSchema { id, schema: text.to_owned() });
                store.parsed.push(schema);
                store.by_key.insert(key, id);
                id
            });
            let entry = store.state.subjects.entry(subject.to_owned()).or_default();
            let version = entry.versions.last().map_or(1, |&(v, _)| v + 1);
            entry.versions.push((version, id));
            id
        })
    }

    /// The version of `subject` holding `text`.
    pub(crate) fn lookup(&self, subject: &str, text: &str) -> Result<VersionInfo, StoreError> {
        let s = self.subject(subject)?;
        let (_, key) = parse_schema(text)?;
        let found = self.by_key.get(&key).and_then(|id| s.versions.iter().find(|(_, v_id)| v_id == id));
        match found {
            Some(&(version, id)) => Ok(self.info(subject, version, id)),
            None => Err(StoreError::new(40403, "Schema not found")),
        }
    }

    fn info(&self, subject: &str, version: u32, id: u32) -> VersionInfo {
        VersionInfo { subject: subject.to_owned(), version, id, schema: self.text(id).to_owned() }
    }

    pub(crate) fn versions(&self, subject: &str) -> Result<Vec<u32>, StoreError> {
        Ok(self.subject(subject)?.versions.iter().map(|&(v, _)| v).collect())
    }

    /// `version` is a number, `latest` or `-1`.
    pub(crate) fn version(&self, subject: &str, version: &str) -> Result<VersionInfo, StoreError> {
        let s = self.subject(subject)?;
        let found = match version {
            "latest" | "-1" => s.versions.last(),
            v => {
                let n: u32 = v.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                    StoreError::new(42202, format!("The specified version '{v}' is not a valid version id. Allowed values are between [1, 2^31-1] and the string \"latest\""))
                })?;
                s.versions.iter().find(|&&(ver, _)| ver == n)
            }
        };
        let &(version_n, id) = found.ok_or_else(|| StoreError::version_not_found(subject, version))?;
        Ok(self.info(subject, version_n, id))
    }

    pub(crate) fn schema_by_id(&self, id: u32) -> Result<&str, StoreError> {
        if id == 0 || id as usize > self.state.schemas.len() {
            return Err(StoreError::new(40403, "Schema not found"));
        }
        Ok(self.text(id))
    }

    /// Deletes a subject; its schema ids stay readable by id.
    pub(crate) fn delete_subject(&mut self, subject: &str) -> Result<Vec<u32>, StoreError> {
        let versions = self.versions(subject)?;
        self.commit(Some(subject), |store| {
            if let Some(s) = store.state.subjects.get_mut(subject) {
                s.versions.clear();
                if s.compatibility.is_none() {
                    store.state.subjects.remove(subject);
                }
            }
        })?;
        Ok(versions)
    }

    pub(crate) fn global_level(&self) -> Level {
        self.state.compatibility
    }

    /// The subject's own level, if set.
    pub(crate) fn subject_level(&self, subject: &str) -> Option<Level> {
        self.state.subjects.get(subject).and_then(|s| s.compatibility)
    }

    pub(crate) fn set_level(&mut self, subject: Option<&str>, level: Option<Level>) -> Result<(), StoreError> {
        self.commit(subject, |store| match subject {
            None => store.state.compatibility = level.unwrap_or(Level::Backward),
            Some(name) => {
                let entry = store.state.subjects.entry(name.to_owned()).or_default();
                entry.compatibility = level;
                if entry.compatibility.is_none() && entry.versions.is_empty() {
                    store.state.subjects.remove(name);
                }
            }
        })
    }

    /// Whether `text` may follow `version` of `subject` under the subject's level.
    pub(crate) fn is_compatible(
        &self,
        subject: &str,
        version: &str,
        text: &str,
    ) -> Result<(bool, Vec<String>), StoreError> {
        let (schema, _) = parse_schema(text)?;
        let info = self.version(subject, version)?;
        let level = match self.effective_level(subject) {
            // One given version: the transitive forms reduce to their plain ones.
            Level::BackwardTransitive => Level::Backward,
            Level::ForwardTransitive => Level::Forward,
            Level::FullTransitive => Level::Full,
            l => l,
        };
        let why = self.incompatibility(level, &schema, &[(info.version, info.id)]);
        Ok((why.is_none(), why.into_iter().collect()))
    }
}

fn source_text(e: &PersistError) -> String {
    std::error::Error::source(e).map(|s| s.to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = r#"{"type":"record","name":"ClickEvent","namespace":"samples.clickstream.avro","fields":[
        {"name":"ip","type":"string"},{"name":"userid","type":"int"}]}"#;

    fn with_field(field: &str) -> String {
        V1.replace("]}", &format!(",{field}]}}"))
    }

    #[test]
    fn formatting_does_not_mint_ids_but_defaults_do() {
        let mut s = Store::in_memory(Level::None);
        let id = s.register("a", V1).unwrap();
        let reformatted = r#"{ "namespace": "samples.clickstream.avro", "name": "ClickEvent", "type": "record",
            "fields": [ {"type": {"type": "string"}, "name": "ip"}, {"name": "userid", "type": "int"} ] }"#;
        assert_eq!(s.register("a", reformatted).unwrap(), id);
        assert_eq!(s.versions("a").unwrap(), [1]);
        assert_eq!(s.register("b", reformatted).unwrap(), id, "one id across subjects");
        let with_default = with_field(r#"{"name":"n","type":"long","default":0}"#);
        let without_default = with_field(r#"{"name":"n","type":"long"}"#);
        let a = s.register("a", &with_default).unwrap();
        let b = s.register("a", &without_default).unwrap();
        assert_ne!(a, b, "a default changes resolution, so it is a different schema");
        assert_eq!(s.versions("a").unwrap(), [1, 2, 3]);
        assert_eq!(s.version("a", "latest").unwrap().id, b);
        assert_eq!(s.lookup("a", reformatted).unwrap().version, 1);
    }

    fn refused(s: &mut Store, subject: &str, text: &str) -> bool {
        match s.register(subject, text) {
            Err(e) => {
                assert_eq!(e.code, 409, "{e}");
                true
            }
            Ok(_) => false,
        }
    }

    #[test]
    fn backward_rules_follow_avro_resolution() {
        let mut s = Store::in_memory(Level::Backward);
        s.register("t", V1).unwrap();
        // Adding a field without a default: new readers cannot fill it from old data.
        assert!(refused(&mut s, "t", &with_field(r#"{"name":"n","type":"long"}"#)));
        // With a default it resolves.
        assert!(!refused(&mut s, "t", &with_field(r#"{"name":"n","type":"long","default":0}"#)));
        // Removing a field is backward compatible (the reader ignores it).
        s.set_level(Some("u"), Some(Level::Backward)).unwrap();
        s.register("u", &with_field(r#"{"name":"n","type":"long"}"#)).unwrap();
        assert!(!refused(&mut s, "u", V1));
        // Promotion int → long is allowed for a reader, long → int is not.
        let long_user = V1.replace(r#""userid","type":"int""#, r#""userid","type":"long""#);
        s.register("p", V1).unwrap();
        assert!(!refused(&mut s, "p", &long_user));
        s.register("q", &long_user).unwrap();
        assert!(refused(&mut s, "q", V1), "reader int cannot read written long");
        // Re-registering an existing version is not a new version: no check.
        assert_eq!(s.register("p", V1).unwrap(), 1);
    }

    #[test]
    fn forward_full_and_transitive() {
        let mut s = Store::in_memory(Level::Forward);
        s.register("f", V1).unwrap();
        // Forward: old readers must read new data. Removing a field the old
        // reader needs (no default there) breaks it.
        let no_user = r#"{"type":"record","name":"ClickEvent","namespace":"samples.clickstream.avro","fields":[{"name":"ip","type":"string"}]}"#;
        assert!(refused(&mut s, "f", no_user));
        // Adding a field without default is fine forward.
        assert!(!refused(&mut s, "f", &with_field(r#"{"name":"n","type":"long"}"#)));

        s.set_level(Some("full"), Some(Level::Full)).unwrap();
        s.register("full", V1).unwrap();
        assert!(refused(&mut s, "full", &with_field(r#"{"name":"n","type":"long"}"#)));
        assert!(!refused(&mut s, "full", &with_field(r#"{"name":"n","type":"long","default":1}"#)));

        // Transitive: v1 → v2 (adds n with a default) → v3 (n without a
        // default). v3 reads v2 data (it has n) but not v1 data (no n, no default).
        let v2 = with_field(r#"{"name":"n","type":"long","default":1}"#);
        let v3 = with_field(r#"{"name":"n","type":"long"}"#);
        s.set_level(Some("bt"), Some(Level::BackwardTransitive)).unwrap();
        s.register("bt", V1).unwrap();
        s.register("bt", &v2).unwrap();
        assert!(refused(&mut s, "bt", &v3));
        s.set_level(Some("b"), Some(Level::Backward)).unwrap();
        s.register("b", V1).unwrap();
        s.register("b", &v2).unwrap();
        assert!(!refused(&mut s, "b", &v3), "plain BACKWARD only checks the latest");
    }

    #[test]
    fn unions_and_enums() {
        let enum_ab = r#"{"type":"enum","name":"E","symbols":["A","B"]}"#;
        let enum_a = r#"{"type":"enum","name":"E","symbols":["A"]}"#;
        let mut s = Store::in_memory(Level::Backward);
        s.register("e", enum_ab).unwrap();
        assert!(refused(&mut s, "e", enum_a), "a reader without symbol B cannot read B");
        let mut s = Store::in_memory(Level::Backward);
        s.register("e", enum_a).unwrap();
        assert!(!refused(&mut s, "e", enum_ab), "adding a symbol is backward compatible");

        let mut s = Store::in_memory(Level::Backward);
        s.register("u", r#"["null","string"]"#).unwrap();
        assert!(refused(&mut s, "u", r#""string""#), "null branch no longer readable");
        assert!(!refused(&mut s, "u", r#"["null","string","int"]"#), "adding a branch is fine");
    }

    #[test]
    fn errors_carry_confluent_codes() {
        let mut s = Store::in_memory(Level::Backward);
        assert_eq!(s.register("x", "{not json").unwrap_err().code, 42201);
        assert_eq!(s.register("x", r#"{"type":"record"}"#).unwrap_err().code, 42201);
        assert_eq!(s.versions("x").unwrap_err().code, 40401);
        s.register("x", V1).unwrap();
        assert_eq!(s.version("x", "2").unwrap_err().code, 40402);
        assert_eq!(s.version("x", "zero").unwrap_err().code, 42202);
        assert_eq!(s.schema_by_id(7).unwrap_err().code, 40403);
        assert_eq!(s.lookup("x", r#""int""#).unwrap_err().code, 40403);
        assert_eq!(StoreError::new(40401, "").status(), 404);
        assert_eq!(StoreError::new(409, "").status(), 409);
        assert_eq!(StoreError::new(42201, "").status(), 422);
    }

    #[test]
    fn delete_keeps_ids_and_restart_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.json");
        let mut s = Store::open(&path, Level::Backward).unwrap();
        let id = s.register("keep", V1).unwrap();
        let id2 = s.register("keep", &with_field(r#"{"name":"n","type":"long","default":0}"#)).unwrap();
        s.register("gone", r#""string""#).unwrap();
        s.set_level(Some("keep"), Some(Level::Full)).unwrap();
        assert_eq!(s.delete_subject("gone").unwrap(), [1]);
        assert_eq!(s.versions("gone").unwrap_err().code, 40401);
        assert_eq!(s.schema_by_id(3).unwrap(), r#""string""#, "ids outlive subjects");
        drop(s);

        let s = Store::open(&path, Level::None).unwrap();
        assert_eq!(s.subjects(), ["keep"]);
        assert_eq!(s.versions("keep").unwrap(), [1, 2]);
        assert_eq!(s.version("keep", "1").unwrap().id, id);
        assert_eq!(s.version("keep", "latest").unwrap().id, id2);
        assert_eq!(s.subject_level("keep"), Some(Level::Full));
        assert_eq!(s.global_level(), Level::Backward, "the saved level wins over the default");
        let mut s = s;
        assert_eq!(s.register("new", r#""string""#).unwrap(), 3, "same schema, same id after restart");
        assert_eq!(s.register("new", r#""bytes""#).unwrap(), 4, "ids continue");
    }

    #[test]
    fn a_failed_save_undoes_the_change() {
        let dir = tempfile::tempdir().unwrap();
        // The data file's directory does not exist, so every save fails.
        let path = dir.path().join("missing").join("registry.json");
        let mut s = Store::open(&path, Level::Backward).unwrap();
        let err = s.register("x", V1).unwrap_err();
        assert_eq!(err.code, 50001, "{err}");
        assert!(s.subjects().is_empty());
        assert_eq!(s.schema_by_id(1).unwrap_err().code, 40403);
    }

    /// The temporary file was `path.with_extension("tmp")`: for a data file
    /// `registry` that is `registry.tmp`, so a file of that name was
    /// overwritten and then renamed away; for a data file `registry.tmp` it
    /// was the data file itself, truncated before the new state was written.
    #[test]
    fn saving_never_touches_a_file_named_like_the_old_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let bystander = dir.path().join("registry.tmp");
        std::fs::write(&bystander, b"not the registry's").unwrap();
        let mut s = Store::open(&dir.path().join("registry"), Level::Backward).unwrap();
        s.register("x", V1).unwrap();
        assert_eq!(std::fs::read(&bystander).unwrap(), b"not the registry's");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "the data file and the bystander, no temporary left: {names:?}");

        let path = dir.path().join("data.tmp");
        let mut s = Store::open(&path, Level::Backward).unwrap();
        s.register("x", V1).unwrap();
        s.register("y", V1).unwrap();
        let reopened = Store::open(&path, Level::Backward).unwrap();
        assert_eq!(reopened.subjects(), ["x", "y"]);
    }

    /// A failed save after earlier ones restores what the change touched,
    /// and only that: the earlier subjects and ids are kept.
    #[test]
    fn a_failed_save_after_saved_changes_restores_the_touched_subject_only() {
        let v2 = with_field(r#"{"name":"n","type":"long","default":0}"#);
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        std::fs::create_dir(&data_dir).unwrap();
        let mut s = Store::open(&data_dir.join("registry.json"), Level::None).unwrap();
        assert_eq!(s.register("x", V1).unwrap(), 1);
        std::fs::remove_dir_all(&data_dir).unwrap();
        let err = s.register("x", &v2).unwrap_err();
        assert_eq!(err.code, 50001, "{err}");
        assert_eq!(s.register("y", &v2).unwrap_err().code, 50001);
        assert_eq!(s.versions("x").unwrap(), [1]);
        assert_eq!(s.schema_by_id(1).unwrap(), V1);
        assert_eq!(s.schema_by_id(2).unwrap_err().code, 40403);
        assert!(s.versions("y").is_err());
        std::fs::create_dir(&data_dir).unwrap();
        assert_eq!(s.register("y", &v2).unwrap(), 2, "ids go on from the last saved one");
    }

    #[test]
    fn corrupt_data_is_refused_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.json");
        std::fs::write(&path, b"{\"format\": 1").unwrap();
        assert!(matches!(Store::open(&path, Level::Backward), Err(PersistError::Invalid { .. })));
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"format\": 1");
    }
}
