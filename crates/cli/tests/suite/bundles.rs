//! Bundles against each other and against the server: project B cannot delete, overwrite or
//! break project A's bundle of the same name; hostile archives (a PAX size lie, 200,000
//! empty entries, a setuid file) and repositories (a manifest linked to
//! `/proc/self/environ`, a local path the operator did not allow, credentials in the URL)
//! are refused or clamped with clear 422 messages.

use super::common::{binary, sandbox_expected};
use super::deploy::{bundle_server, git, replay_run, run_to_end, tarball, upload, write_bundle};
use rollout_testkit::{ServerOptions, TestServer};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const MANIFEST: &str = "[run]\ncommand = [\"sh\", \"-c\", \"exit 1\"]\n";

/// `upload` with another key.
async fn upload_as(server: &TestServer, key: &str, name: &str, archive: Vec<u8>) -> (u16, Value) {
    let request = server
        .client()
        .post(format!("{}/v1/environments/{name}/deploy", server.base_url))
        .bearer_auth(key)
        .header("content-type", "application/gzip")
        .body(archive);
    server.send(request).await
}

fn bundle_dir(deployed: &Value) -> String {
    deployed["versions"][0]["source"]["bundle"]["dir"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn project_b_cannot_delete_overwrite_or_break_project_a_bundle_of_the_same_name() {
    let server = bundle_server().await;
    let work = tempfile::tempdir().unwrap();
    let bundle = work.path().join("bundled");
    write_bundle(&bundle, "echo built > built.txt");
    let archive = tarball(&bundle);
    let (status, a) = upload(&server, "bundled", archive.clone()).await;
    assert_eq!(status, 201, "{a}\n{}", server.log());
    let a_dir = bundle_dir(&a);
    assert!(a_dir.contains("/envs/default/bundled/"), "{a_dir}");

    let (status, key) = server
        .post(
            "/v1/keys",
            &json!({"name": "b admin", "role": "admin", "project": "b"}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let b_key = key["key"].as_str().unwrap().to_string();

    // The same content in B: B's own copy, A's untouched.
    let (status, b) = upload_as(&server, &b_key, "bundled", archive).await;
    assert_eq!(status, 201, "{b}");
    let b_dir = bundle_dir(&b);
    assert!(b_dir.contains("/envs/b/bundled/"), "{b_dir}");
    // Other content, then a forced delete of B's environment.
    std::fs::write(bundle.join("README.md"), "B's version\n").unwrap();
    let (status, b) = upload_as(&server, &b_key, "bundled", tarball(&bundle)).await;
    assert_eq!(status, 201, "{b}");
    let request = server
        .client()
        .delete(format!(
            "{}/v1/environments/bundled?force=true",
            server.base_url
        ))
        .bearer_auth(&b_key);
    let (status, deleted) = server.send(request).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(deleted["deleted_versions"], 2);
    assert!(!Path::new(&b_dir).exists());

    // A's bundle and runs are as they were.
    assert!(Path::new(&a_dir).join("built.txt").exists());
    let trace = run_to_end(&server, &replay_run("bundled", None)).await;
    assert_eq!(trace["status"], "completed", "{trace}\n{}", server.log());
    assert_eq!(trace["reward"], 1.0);
}

/// A tar.gz made with the tar crate, entries appended by `fill`.
fn archive(fill: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(MANIFEST.len() as u64);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, "rollout.toml", MANIFEST.as_bytes())
        .unwrap();
    fill(&mut builder);
    let tar = builder.into_inner().unwrap();
    // The system's gzip: the tests' debug build of flate2 takes seconds on 100 MB.
    let mut gzip = std::process::Command::new("gzip")
        .arg("-1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = gzip.stdin.take().unwrap();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &tar));
    let output = gzip.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success());
    output.stdout
}

#[tokio::test]
async fn hostile_archives_are_refused_or_clamped() {
    let server = bundle_server().await;
    let message = |body: &Value| {
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    // A PAX record says 5 GiB where the header says 0 (a gzip bomb's disguise).
    let lie = archive(|builder| {
        let record = "19 size=5368709120\n";
        let mut pax = tar::Header::new_ustar();
        pax.set_entry_type(tar::EntryType::XHeader);
        pax.set_path("PaxHeaders/data.bin").unwrap();
        pax.set_size(record.len() as u64);
        pax.set_mode(0o644);
        pax.set_cksum();
        builder.append(&pax, record.as_bytes()).unwrap();
        let mut header = tar::Header::new_ustar();
        header.set_path("data.bin").unwrap();
        header.set_size(0);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, std::io::empty()).unwrap();
    });
    let (status, body) = upload(&server, "lie", lie).await;
    assert_eq!(status, 422, "{body}");
    assert!(message(&body).contains("more than 4096 MiB"), "{body}");

    // 200,000 empty entries (an inode bomb): refused before anything is written.
    let many = archive(|builder| {
        let mut header = tar::Header::new_gnu();
        header.set_size(0);
        header.set_mode(0o644);
        for i in 0..200_000 {
            let name = format!("f{i}");
            let field = &mut header.as_old_mut().name;
            field.fill(0);
            field[..name.len()].copy_from_slice(name.as_bytes());
            header.set_cksum();
            builder.append(&header, std::io::empty()).unwrap();
        }
    });
    let (status, body) = upload(&server, "many", many).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        message(&body).contains("more than 100000 entries"),
        "{body}"
    );
    assert!(
        !server
            .data_dir
            .join("envs/default/many")
            .join("f1")
            .exists()
    );

    // A setuid, setgid, world-writable program: deployed with plain modes.
    let setuid = archive(|builder| {
        let mut header = tar::Header::new_gnu();
        header.set_size(3);
        header.set_mode(0o6777);
        builder
            .append_data(&mut header, "tool", &b"hi\n"[..])
            .unwrap();
    });
    let (status, body) = upload(&server, "setuid", setuid).await;
    // Its run command fails (the bundle only carries the file), but it was unpacked.
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "environment_unusable", "{body}");
    let dirs: Vec<_> = std::fs::read_dir(server.data_dir.join("envs/default/setuid"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let mode = std::fs::metadata(dirs[0].path().join("tool"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o755);
}

#[tokio::test]
async fn hostile_repositories_are_refused_without_showing_secrets() {
    let server = bundle_server().await;
    let work = tempfile::tempdir().unwrap();
    let message = |body: &Value| {
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    // A manifest that links to the server's environment.
    let repo = work.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    std::os::unix::fs::symlink("/proc/self/environ", repo.join("rollout.toml")).unwrap();
    git(&repo, &["init", "--quiet"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "--quiet", "-m", "first"]);
    let url = format!("file://{}", repo.display());
    let (status, body) = server
        .post(
            "/v1/environments",
            &json!({"name": "linked", "git": {"url": url}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        message(&body).contains("'rollout.toml' is a symbolic link that points outside the bundle"),
        "{body}"
    );
    assert!(!body.to_string().contains("PATH="), "{body}");

    // Credentials in a URL are neither shown nor logged.
    let (status, body) = server
        .post(
            "/v1/environments",
            &json!({"name": "private", "git": {"url": "https://deploy:canary-token-91c4@127.0.0.1:9/env.git"}}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        message(&body).contains("https://***@127.0.0.1:9/env.git"),
        "{body}"
    );
    assert!(!body.to_string().contains("canary-token-91c4"), "{body}");
    assert!(!server.log().contains("canary-token-91c4"));

    // Local repositories only when the operator allows them; plain http never.
    let strict = TestServer::start(
        binary(),
        ServerOptions {
            config_toml: Some(format!("[sandbox]\nrequired = {}\n", sandbox_expected())),
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap();
    for url in [
        format!("file://{}", repo.display()),
        repo.display().to_string(),
        "http://example.com/env.git".to_string(),
    ] {
        let (status, body) = strict
            .post(
                "/v1/environments",
                &json!({"name": "local", "git": {"url": url}}),
            )
            .await;
        assert_eq!(status, 422, "{body}");
        let text = message(&body);
        assert!(
            text.contains("allow_local_git = true") || text.contains("only https:// and ssh"),
            "{body}"
        );
    }
}
