//! Whether the network is metered, as NetworkManager says: its `Metered` property
//! (NMMetered) on the system bus, read once and then followed through `PropertiesChanged`
//! and the name's owner changes — no polling. The system bus is the one
//! `DBUS_SYSTEM_BUS_ADDRESS` names, else the standard socket.
//!
//! Without a system bus, or with no NetworkManager on it, the service is told `None`
//! (unmetered unless the config says `metered = "yes"`). NetworkManager is never started
//! by asking: every call carries NO_AUTO_START.

use std::collections::HashMap;
use std::thread::JoinHandle;

use zbus::blocking::{Connection, Proxy};
use zbus::proxy::{CacheProperties, MethodFlags};
use zbus::zvariant::OwnedValue;

use crate::QueueManager;

const NM_NAME: &str = "org.freedesktop.NetworkManager";
const NM_PATH: &str = "/org/freedesktop/NetworkManager";
const NM_INTERFACE: &str = "org.freedesktop.NetworkManager";
const PROPERTIES_INTERFACE: &str = "org.freedesktop.DBus.Properties";

/// Starts the threads that follow NetworkManager's `Metered` and tell `manager`; `None`
/// when there is no system bus (the manager then keeps its default: unknown, unmetered).
pub fn watch_network_manager(manager: &QueueManager) -> Option<Vec<JoinHandle<()>>> {
    let connection = match Connection::system() {
        Ok(connection) => connection,
        Err(error) => {
            tracing::info!(
                "no system bus ({error}): the network counts as unmetered unless the config \
                 says metered = \"yes\""
            );
            manager.set_network_metered(None);
            return None;
        }
    };
    let properties = match properties_proxy(&connection) {
        Ok(proxy) => proxy,
        Err(error) => {
            tracing::warn!("cannot watch NetworkManager: {error}");
            manager.set_network_metered(None);
            return None;
        }
    };
    // Subscribed before the first read, so a change between the two is not missed.
    let changes = match properties.receive_signal("PropertiesChanged") {
        Ok(changes) => changes,
        Err(error) => {
            tracing::warn!("cannot follow NetworkManager's properties: {error}");
            manager.set_network_metered(None);
            return None;
        }
    };
    let owners = Proxy::new(
        &connection,
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
    )
    .and_then(|bus| bus.receive_signal_with_args("NameOwnerChanged", &[(0, NM_NAME)]));
    manager.set_network_metered(read_metered(&properties));

    let mut threads = Vec::new();
    let property_manager = manager.clone();
    let spawned = std::thread::Builder::new()
        .name("qmgr-metered".into())
        .spawn(move || {
            for message in changes {
                type Changed = (String, HashMap<String, OwnedValue>, Vec<String>);
                let Ok((interface, changed, invalidated)) = message.body().deserialize::<Changed>()
                else {
                    continue;
                };
                if interface != NM_INTERFACE {
                    continue;
                }
                if let Some(value) = changed.get("Metered") {
                    match u32::try_from(value) {
                        Ok(metered) => property_manager.set_network_metered(Some(metered)),
                        Err(error) => tracing::warn!("NetworkManager's Metered: {error}"),
                    }
                } else if invalidated.iter().any(|name| name == "Metered") {
                    property_manager.set_network_metered(read_metered(&properties));
                }
            }
        });
    match spawned {
        Ok(thread) => threads.push(thread),
        Err(error) => tracing::warn!("cannot start the NetworkManager watch: {error}"),
    }
    match owners {
        Ok(owners) => {
            let owner_manager = manager.clone();
            let owner_connection = connection.clone();
            let spawned = std::thread::Builder::new()
                .name("qmgr-nm-owner".into())
                .spawn(move || {
                    for message in owners {
                        let Ok((_, _, new_owner)) =
                            message.body().deserialize::<(String, String, String)>()
                        else {
                            continue;
                        };
                        let metered = if new_owner.is_empty() {
                            tracing::info!("NetworkManager left the system bus");
                            None
                        } else {
                            properties_proxy(&owner_connection)
                                .ok()
                                .and_then(|proxy| read_metered(&proxy))
                        };
                        owner_manager.set_network_metered(metered);
                    }
                });
            match spawned {
                Ok(thread) => threads.push(thread),
                Err(error) => tracing::warn!("cannot start the NetworkManager watch: {error}"),
            }
        }
        Err(error) => tracing::warn!("cannot follow NetworkManager coming and going: {error}"),
    }
    Some(threads)
}

fn properties_proxy(connection: &Connection) -> zbus::Result<Proxy<'static>> {
    zbus::blocking::proxy::Builder::new(connection)
        .destination(NM_NAME)?
        .path(NM_PATH)?
        .interface(PROPERTIES_INTERFACE)?
        .cache_properties(CacheProperties::No)
        .build()
}

/// NetworkManager's `Metered` now; `None` when it is not on the bus (or answers nonsense).
fn read_metered(properties: &Proxy<'_>) -> Option<u32> {
    let answer: zbus::Result<Option<OwnedValue>> = properties.call_with_flags(
        "Get",
        MethodFlags::NoAutoStart.into(),
        &(NM_INTERFACE, "Metered"),
    );
    match answer {
        Ok(Some(value)) => match u32::try_from(value) {
            Ok(metered) => {
                tracing::info!("NetworkManager: Metered = {metered}");
                Some(metered)
            }
            Err(error) => {
                tracing::warn!("NetworkManager's Metered is not a u32: {error}");
                None
            }
        },
        Ok(None) => None,
        Err(error) => {
            tracing::info!(
                "NetworkManager cannot be asked ({error}): the network counts as unmetered \
                 unless the config says metered = \"yes\""
            );
            None
        }
    }
}
