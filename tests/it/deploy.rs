//! docker-compose.yml and the Dockerfile, checked without Docker: the
//! services and their wiring, ports, healthchecks, that every command parses
//! with fedgate's own CLI, that the configuration `mock init` writes for the
//! compose file loads, and that every `${VAR}` is documented.

use std::collections::BTreeSet;
use std::path::Path;

use clap::Parser;
use serde_norway::Value;

fn repo(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn compose() -> Value {
    serde_norway::from_str(&repo("docker-compose.yml")).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Sequence(s) => s
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => panic!("not a string: {other:?}"),
            })
            .collect(),
        Value::String(s) => vec![s.clone()],
        other => panic!("not a list of strings: {other:?}"),
    }
}

/// `${VAR:-default}` → default, `${VAR}` → "" (as compose does when unset).
fn with_defaults(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').unwrap() + i;
        let inner = &rest[i + 2..end];
        out.push_str(inner.split_once(":-").map(|(_, d)| d).unwrap_or(""));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Every `${NAME…}` in `text`.
fn variables(text: &str) -> BTreeSet<String> {
    let mut vars = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        let name: String = rest[i + 2..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        assert!(!name.is_empty(), "an empty ${{}} in docker-compose.yml");
        vars.insert(name);
        rest = &rest[i + 2..];
    }
    vars
}

#[test]
fn compose_runs_two_instances_on_one_redis_with_the_mocks() {
    let c = compose();
    let services = c["services"].as_mapping().unwrap();
    let names: BTreeSet<&str> = services.keys().filter_map(|k| k.as_str()).collect();
    for want in [
        "init",
        "redis",
        "fedgate-a",
        "fedgate-b",
        "entra",
        "console",
    ] {
        assert!(names.contains(want), "service {want} missing: {names:?}");
    }
    let mut host_ports = BTreeSet::new();
    for (name, svc) in services {
        let name = name.as_str().unwrap();
        // Every long-running service says when it is healthy.
        if name != "init" {
            let test = strings(&svc["healthcheck"]["test"]);
            assert!(test.len() > 1, "{name}: healthcheck {test:?}");
        }
        if let Some(ports) = svc.get("ports") {
            for p in strings(ports) {
                let (host, _container) = p.split_once(':').unwrap();
                assert!(
                    host_ports.insert(host.to_string()),
                    "{name}: host port {host} used twice"
                );
            }
        }
    }
    // Both instances: fedgate serve, the same configuration, the same Redis,
    // readiness as the healthcheck, started after Redis is healthy.
    for name in ["fedgate-a", "fedgate-b"] {
        let svc = &c["services"][name];
        assert_eq!(strings(&svc["command"]), ["serve"]);
        let env = &svc["environment"];
        assert_eq!(env["FEDGATE_CONFIG"].as_str(), Some("/shared/fedgate.toml"));
        assert_eq!(
            env["FEDGATE_STORE_URL"].as_str(),
            Some("redis://redis:6379/0")
        );
        assert!(strings(&svc["healthcheck"]["test"])
            .iter()
            .any(|a| a.ends_with(":8443/readyz")));
        assert_eq!(
            svc["depends_on"]["redis"]["condition"].as_str(),
            Some("service_healthy")
        );
        assert_eq!(
            svc["depends_on"]["init"]["condition"].as_str(),
            Some("service_completed_successfully")
        );
        assert!(strings(&svc["ports"])[0].ends_with(":8443"));
    }
    assert_eq!(
        c["services"]["fedgate-a"]["environment"],
        c["services"]["fedgate-b"]["environment"]
    );
    // Redis keeps claims across a restart and never evicts them.
    let redis = strings(&c["services"]["redis"]["command"]).join(" ");
    assert!(redis.contains("--appendonly yes"), "{redis}");
    assert!(redis.contains("--maxmemory-policy noeviction"), "{redis}");
}

#[test]
fn every_compose_command_parses_and_the_configuration_it_writes_loads() {
    let c = compose();
    let services = c["services"].as_mapping().unwrap();
    let mut init_args = None;
    for (name, svc) in services {
        if svc["image"].as_str() != Some("fedgate:local") {
            continue;
        }
        let args: Vec<String> = strings(&svc["command"])
            .iter()
            .map(|a| with_defaults(a))
            .collect();
        let mut argv = vec!["fedgate".to_string()];
        argv.extend(args.clone());
        let mut parsed = fedgate::cli::Cli::try_parse_from(&argv);
        if let Err(e) = &parsed {
            // `serve` takes its --config from FEDGATE_CONFIG, set in the service.
            if args == ["serve"] {
                let config = svc["environment"]["FEDGATE_CONFIG"].as_str().unwrap();
                argv.extend(["--config".to_string(), config.to_string()]);
                parsed = fedgate::cli::Cli::try_parse_from(&argv);
            } else {
                panic!("{name:?}: {argv:?}: {e}");
            }
        }
        assert!(parsed.is_ok(), "{name:?}: {argv:?}: {:?}", parsed.err());
        if name.as_str() == Some("init") {
            init_args = Some(args);
        }
    }
    // Run what the init service runs, into a directory of our own, and load
    // the result as fedgate-a would (with its environment).
    let args = init_args.expect("an init service");
    let arg = |flag: &str| {
        let i = args.iter().position(|a| a == flag).unwrap();
        args[i + 1].clone()
    };
    let dir = std::env::temp_dir().join(format!(
        "fedgate-compose-{}-{}",
        std::process::id(),
        fedgate::util::random_id().unwrap()
    ));
    let path = fedgate::demo::mock_init(
        &dir,
        &arg("--listen"),
        &arg("--public-url"),
        &arg("--console-url"),
    )
    .unwrap();
    let env_a = &c["services"]["fedgate-a"]["environment"];
    let env: Vec<(String, String)> = env_a
        .as_mapping()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().unwrap().to_string(),
                with_defaults(v.as_str().unwrap()),
            )
        })
        .collect();
    let config = fedgate::config::Config::load(&path, &env).unwrap();
    assert_eq!(config.store.kind, "redis");
    assert_eq!(config.store.url.as_deref(), Some("redis://redis:6379/0"));
    assert!(!config.server.listen.ip().is_loopback());
    assert!(config.server.tls_cert_file.as_ref().unwrap().exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_compose_variable_is_documented() {
    let vars = variables(&repo("docker-compose.yml"));
    assert!(!vars.is_empty());
    let doc = repo("docs/deployment.md");
    for v in &vars {
        assert!(
            doc.contains(&format!("`{v}`")),
            "docker-compose.yml uses ${{{v}}}, which docs/deployment.md does not document"
        );
    }
    // The variables fedgate's containers are given are documented too.
    let c = compose();
    for name in ["fedgate-a", "fedgate-b"] {
        for k in c["services"][name]["environment"]
            .as_mapping()
            .unwrap()
            .keys()
        {
            let k = k.as_str().unwrap();
            assert!(
                doc.contains(&format!("`{k}`")),
                "{k} is not in docs/deployment.md"
            );
        }
    }
}

#[test]
fn the_image_is_multi_stage_and_runs_as_a_user() {
    let d = repo("Dockerfile");
    let froms: Vec<&str> = d.lines().filter(|l| l.starts_with("FROM ")).collect();
    assert!(froms.len() >= 2, "{froms:?}");
    let user = d
        .lines()
        .rfind(|l| l.starts_with("USER "))
        .expect("a USER line");
    let who = user
        .trim_start_matches("USER ")
        .split(':')
        .next()
        .unwrap()
        .trim();
    assert!(who != "root" && who != "0", "{user}");
    // The runtime stage starts after the last FROM and gets only the binary.
    let runtime = &d[d.rfind("\nFROM ").unwrap()..];
    assert!(runtime.contains("COPY --from=build"), "{runtime}");
    assert!(!runtime.contains("COPY src"), "{runtime}");
    // What the binary embeds is in the build context.
    let ignore = repo(".dockerignore");
    for embedded in ["fixtures", "tests"] {
        assert!(
            !ignore.lines().any(|l| l.trim() == embedded),
            "{embedded} is ignored"
        );
    }
}
