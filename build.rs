// Migrations are embedded by `sqlx::migrate!`: a new or changed file under migrations/ rebuilds
// the crate.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
