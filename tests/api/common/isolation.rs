//! The tests of this binary share one process and one PostgreSQL server. A few read what only a
//! process alone can tell: the metrics registry (one per process, as in production), a global
//! log subscriber, or the transaction ids the server hands out (one counter for every
//! database). Such a test runs again in a child process of this binary that runs it alone, and
//! the one that counts transaction ids first waits until no other test has a database.

use std::process::Command;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Set in the child process to the test it runs.
const CHILD: &str = "VEREDITO_TEST_OWN_PROCESS";

/// What the test needs of the PostgreSQL server while it runs.
pub enum Server {
    /// Other tests may use it meanwhile.
    Shared,
    /// No other test has a database meanwhile: nothing else takes a transaction id.
    Alone,
}

/// In the parent process: runs the test `name` of `module` (`module_path!()`) in a child
/// process of this binary, fails if it fails, and answers true (the caller returns). In the
/// child: answers false, and the caller runs the test's body.
pub async fn own_process(module: &str, name: &str, server: Server) -> bool {
    // `api::operations` is the module `operations` to the test runner.
    let path = match module.split_once("::") {
        Some((_, inner)) => format!("{inner}::{name}"),
        None => name.to_owned(),
    };
    if std::env::var(CHILD).is_ok_and(|running| running == path) {
        return false;
    }
    let _alone = match server {
        Server::Alone => Some(tokio::task::spawn_blocking(Alone::wait).await.unwrap()),
        Server::Shared => None,
    };
    let exe = std::env::current_exe().expect("the test binary's path");
    let child_path = path.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(exe)
            .args([child_path.as_str(), "--exact", "--test-threads=1"])
            .env(CHILD, &child_path)
            .output()
    })
    .await
    .unwrap()
    .expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{path} failed in its own process");
    assert!(
        stdout.contains("1 passed"),
        "{path} did not run in its own process"
    );
    true
}

struct Databases {
    live: usize,
    alone: bool,
}

static DATABASES: Mutex<Databases> = Mutex::new(Databases {
    live: 0,
    alone: false,
});
static CHANGED: Condvar = Condvar::new();

fn databases() -> MutexGuard<'static, Databases> {
    DATABASES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Held by every test database from before it is created until after it is dropped.
pub struct Share(());

impl Share {
    /// Waits while a test is alone on the server. A test that holds a database already never
    /// waits here: no test is alone while any database lives.
    pub fn take() -> Share {
        let mut state = databases();
        while state.alone {
            state = CHANGED.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.live += 1;
        Share(())
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        databases().live -= 1;
        CHANGED.notify_all();
    }
}

/// No test database lives while this is held, and none is made.
struct Alone(());

impl Alone {
    /// Waits until no test has a database (at worst until the others are done).
    fn wait() -> Alone {
        let mut state = databases();
        while state.alone || state.live > 0 {
            state = CHANGED.wait(state).unwrap_or_else(|e| e.into_inner());
        }
        state.alone = true;
        Alone(())
    }
}

impl Drop for Alone {
    fn drop(&mut self) {
        databases().alone = false;
        CHANGED.notify_all();
    }
}
