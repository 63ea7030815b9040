//! Adapter plugins from a directory: every shared library in it is loaded once (and never
//! unloaded: see ../shared/PLUGIN-ABI-FINDINGS.md), its ABI checked, and its connection types
//! registered; the [`AdapterFactory`] then creates a connection's adapter from the plugin that
//! serves its type, with the connection (as JSON) for configuration.

use super::model::Connection;
use super::runtime::AdapterFactory;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use twinwire_plugin::host::PluginLibrary;
use twinwire_plugin::{Adapter, HostSink};

/// The plugins loaded, by the connection types they serve.
#[derive(Debug, Default, Clone)]
pub struct Plugins {
    by_type: HashMap<String, Arc<PluginLibrary>>,
}

impl Plugins {
    /// Loads every `*.so`, `*.dylib` and `*.dll` of `dir`. A library that is not a plugin, or
    /// speaks another ABI, is refused with its reason (logged) and the others still load.
    pub fn load_dir(dir: &Path) -> Plugins {
        let mut plugins = Plugins::default();
        let Ok(entries) = std::fs::read_dir(dir) else {
            tracing::info!(dir = %dir.display(), "no plugin directory");
            return plugins;
        };
        let mut paths: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("so" | "dylib" | "dll")
                )
            })
            .collect();
        paths.sort();
        for path in paths {
            match PluginLibrary::load(&path) {
                Ok(library) => {
                    let library = Arc::new(library);
                    for kind in library.connection_types() {
                        tracing::info!(plugin = library.name(), connection_type = %kind, path = %path.display(), "adapter plugin loaded");
                        plugins.by_type.insert(kind.clone(), Arc::clone(&library));
                    }
                }
                Err(error) => tracing::error!(%error, "adapter plugin refused"),
            }
        }
        plugins
    }

    /// The connection types served.
    pub fn types(&self) -> Vec<&str> {
        let mut types: Vec<&str> = self.by_type.keys().map(String::as_str).collect();
        types.sort_unstable();
        types
    }

    /// Whether the plugin serving a connection type settles consumed messages; `None` when no
    /// plugin serves it.
    pub fn settles(&self, connection_type: &str) -> Option<bool> {
        self.by_type.get(connection_type).map(|l| l.settles())
    }

    /// A factory creating each connection's adapter from the plugin serving its type.
    pub fn factory(&self) -> AdapterFactory {
        let by_type = self.by_type.clone();
        Arc::new(move |connection: Connection, sink: Arc<dyn HostSink>| {
            let library = by_type.get(connection.connection_type.as_str()).cloned();
            Box::pin(async move {
                let Some(library) = library else {
                    return Err(format!(
                        "no adapter plugin serves the connection type '{}'; put one in the plugin directory",
                        connection.connection_type
                    ));
                };
                let config = serde_json::to_vec(&connection).map_err(|e| e.to_string())?;
                let adapter = library.create(&config, sink).await?;
                Ok(Arc::new(adapter) as Arc<dyn Adapter>)
            })
        })
    }
}
