//! Layered loading: the files, `DATABASE_URL`, the `VEREDITO__*` variables and the API keys
//! the environment gives.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ApiKeySettings, ConfigError, Settings, invalid, published, validate};

/// Where the layers come from. `Default` reads `./config` and the process environment.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Folder holding `default.toml`; `VEREDITO_CONFIG_DIR` or `./config` when unset.
    pub config_dir: Option<PathBuf>,
    /// The `--config FILE` of the command line.
    pub file: Option<PathBuf>,
    /// Highest-priority overrides as `section.key` pairs (used by tests).
    pub overrides: Vec<(String, String)>,
    /// Skip the process environment (tests set everything explicitly).
    pub ignore_env: bool,
    /// Environment variables read instead of the process's (tests of the layer order).
    pub environment: Option<HashMap<String, String>>,
}

impl Sources {
    fn variables(&self) -> HashMap<String, String> {
        if self.ignore_env {
            HashMap::new()
        } else if let Some(environment) = &self.environment {
            environment.clone()
        } else {
            std::env::vars().collect()
        }
    }

    fn builder(
        &self,
        dir: &Path,
        env: &HashMap<String, String>,
        with_sandbox: bool,
    ) -> Result<config::ConfigBuilder<config::builder::DefaultState>, ConfigError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from(dir.join("default.toml")).required(true));
        if with_sandbox {
            builder =
                builder.add_source(config::File::from(dir.join("sandbox.toml")).required(true));
        }
        if let Some(name) = env.get("VEREDITO_ENV") {
            builder = builder
                .add_source(config::File::from(dir.join(format!("{name}.toml"))).required(true));
        }
        if let Some(file) = &self.file {
            builder = builder.add_source(config::File::from(file.as_path()).required(true));
        }
        if let Some(url) = env.get("DATABASE_URL") {
            builder = builder.add_source(DatabaseUrl(url.clone()));
        }
        let prefixed: HashMap<String, String> = env
            .iter()
            .filter(|(k, _)| k.starts_with("VEREDITO__"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("VEREDITO")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(prefixed)),
        );
        for (key, value) in &self.overrides {
            builder = builder.set_override(key.as_str(), value.as_str())?;
        }
        Ok(builder)
    }
}

/// `DATABASE_URL`, the conventional variable, as a layer of its own: below the
/// `VEREDITO__DATABASE__URL` variable, above every file.
#[derive(Debug, Clone)]
struct DatabaseUrl(String);

impl config::Source for DatabaseUrl {
    fn clone_into_box(&self) -> Box<dyn config::Source + Send + Sync> {
        Box::new(self.clone())
    }

    fn collect(&self) -> Result<config::Map<String, config::Value>, config::ConfigError> {
        let origin = Some("DATABASE_URL".to_owned());
        let mut database = config::Map::new();
        database.insert(
            "url".to_owned(),
            config::Value::new(origin.as_ref(), self.0.clone()),
        );
        let mut root = config::Map::new();
        root.insert(
            "database".to_owned(),
            config::Value::new(origin.as_ref(), config::ValueKind::Table(database)),
        );
        Ok(root)
    }
}

/// API keys given by the environment: `VEREDITO_API_KEYS` (a JSON list) or
/// `VEREDITO_API_KEYS_FILE` (a JSON list, or a TOML file of `[[keys]]` tables).
fn api_keys_from(
    env: &HashMap<String, String>,
) -> Result<Option<Vec<ApiKeySettings>>, ConfigError> {
    #[derive(Deserialize)]
    struct KeysFile {
        keys: Vec<ApiKeySettings>,
    }
    if let Some(list) = env.get("VEREDITO_API_KEYS") {
        return serde_json::from_str(list)
            .map(Some)
            .map_err(|e| invalid("VEREDITO_API_KEYS", format!("not a JSON list of keys: {e}")));
    }
    let Some(path) = env.get("VEREDITO_API_KEYS_FILE") else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid("VEREDITO_API_KEYS_FILE", format!("cannot read {path}: {e}")))?;
    let keys = if path.ends_with(".toml") {
        config::Config::builder()
            .add_source(config::File::from_str(&text, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize::<KeysFile>())
            .map(|f| f.keys)
            .map_err(|e| invalid("VEREDITO_API_KEYS_FILE", format!("{path}: {e}")))?
    } else {
        serde_json::from_str(&text)
            .map_err(|e| invalid("VEREDITO_API_KEYS_FILE", format!("{path}: {e}")))?
    };
    Ok(Some(keys))
}

impl Settings {
    /// Reads the layers, then checks every value: all the mistakes found are reported at once.
    pub fn load(sources: &Sources) -> Result<Self, ConfigError> {
        let env = sources.variables();
        let dir = sources
            .config_dir
            .clone()
            .or_else(|| env.get("VEREDITO_CONFIG_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("config"));
        // The sandbox file joins the layers only when the layers without it turn the sandbox on.
        let first = sources.builder(&dir, &env, false)?.build()?;
        let config = if first.get_bool("sandbox.enabled").unwrap_or(false) {
            sources.builder(&dir, &env, true)?.build()?
        } else {
            first
        };
        let mut settings: Settings = config.try_deserialize()?;
        if let Some(keys) = api_keys_from(&env)? {
            settings.api.keys = keys;
        }
        let mut mistakes = validate::mistakes(&settings);
        if !settings.sandbox.enabled {
            mistakes.extend(published::mistakes(&settings)?);
        }
        if mistakes.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError::Invalid(mistakes))
        }
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use crate::config::Settings;
    use crate::config::fixtures::{load, production_file, tempfile_path};

    #[test]
    fn layers_apply_in_the_documented_order() {
        let file = tempfile_path::TempToml::new("[database]\nurl = \"postgres://file/db\"\n");
        let sandbox = ("VEREDITO_ENV", "sandbox");
        let url = |s: Settings| s.database.url.expose_secret().to_owned();
        assert_eq!(
            url(load(&[sandbox], None).unwrap()),
            "postgres://postgres@127.0.0.1:5432/veredito"
        );
        assert_eq!(
            url(load(&[sandbox], Some(file.0.clone())).unwrap()),
            "postgres://file/db"
        );
        let with_database_url = [sandbox, ("DATABASE_URL", "postgres://conventional/db")];
        assert_eq!(
            url(load(&with_database_url, Some(file.0.clone())).unwrap()),
            "postgres://conventional/db"
        );
        let both = [
            sandbox,
            ("DATABASE_URL", "postgres://conventional/db"),
            ("VEREDITO__DATABASE__URL", "postgres://prefixed/db"),
        ];
        assert_eq!(
            url(load(&both, Some(file.0.clone())).unwrap()),
            "postgres://prefixed/db"
        );
    }

    #[test]
    fn the_sandbox_file_is_read_only_when_the_sandbox_is_on() {
        let on = load(&[("VEREDITO__SANDBOX__ENABLED", "true")], None).unwrap();
        assert!(on.sandbox.enabled);
        assert_eq!(on.api.keys.len(), 10);
        // Off and nothing else configured: the start names what is missing.
        let off = load(&[], None).unwrap_err().to_string();
        assert!(off.contains("missing configuration field"), "{off}");
        let production = production_file(None);
        let settings = load(&[], Some(production.0.clone())).unwrap();
        assert!(!settings.sandbox.enabled);
        assert_eq!(settings.api.keys.len(), 1);
    }

    #[test]
    fn api_keys_come_from_the_environment() {
        let file = production_file(None);
        let list = r#"[{"name":"from-env","key_sha256":"00000000000000000000000000000000000000000000000000000000000000aa","scopes":["decisions:read"]}]"#;
        let settings = load(&[("VEREDITO_API_KEYS", list)], Some(file.0.clone())).unwrap();
        assert_eq!(settings.api.keys.len(), 1);
        assert_eq!(settings.api.keys[0].name, "from-env");
        let keys = tempfile_path::TempToml::new(
            "[[keys]]\nname = \"from-file\"\nkey_sha256 = \"00000000000000000000000000000000000000000000000000000000000000bb\"\nscopes = [\"pii:read\"]\n",
        );
        let path = keys.0.to_string_lossy().into_owned();
        let settings = load(&[("VEREDITO_API_KEYS_FILE", &path)], Some(file.0.clone())).unwrap();
        assert_eq!(settings.api.keys[0].name, "from-file");
        let error = load(&[("VEREDITO_API_KEYS", "[{")], Some(file.0.clone()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("VEREDITO_API_KEYS"), "{error}");
    }
}
