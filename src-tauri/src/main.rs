// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    if let Err(e) = recourse_console::run() {
        eprintln!("recourse-console: {e}");
        std::process::exit(1);
    }
}
