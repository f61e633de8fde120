//! Real clients driven through `bitrouter serve` against the fake Codex backend, each set up
//! the way a user would (environment or a config file inside the test's temp home), each
//! checked by what the client itself prints. Where a client has a tool loop, the backend asks
//! for a tool call, the client runs it and sends the result, and the final answer it prints
//! proves the loop ran (see `support::model`). What each client sent bitrouter is kept as its
//! fixtures (see `support::fixtures`).

mod aider;
mod langchain;
mod llm;
mod node_sdks;
mod opencode;
mod qwen;

use std::path::PathBuf;

use crate::support::TestContext;
use crate::support::fake_upstream::{FakeUpstream, Recorded};
use crate::support::fixtures::{self, Scrub};
use crate::support::model::{self, ToolLoop};
use crate::support::recorder::Recorder;
use crate::support::serve::{ServeProcess, codex_server};

/// The fake backend, bitrouter with one signed-in account in front of it, and a recorder in
/// front of bitrouter (the address clients get).
pub struct Stage {
    pub fake: FakeUpstream,
    pub ctx: TestContext,
    pub server: ServeProcess,
    pub recorder: Recorder,
}

impl Stage {
    /// Starts everything; the backend answers plainly until told to [`Stage::play`].
    pub async fn start() -> Stage {
        let fake = FakeUpstream::start().await;
        let (ctx, server) = codex_server(&fake).await;
        let recorder = Recorder::start(&server.url()).await;
        Stage {
            fake,
            ctx,
            server,
            recorder,
        }
    }

    /// Makes the backend ask for `tool_loop`'s call when a request offers the tool.
    pub fn play(&self, tool_loop: &ToolLoop) {
        self.fake.respond_with(tool_loop.clone().responder());
    }

    /// bitrouter's address as the client sees it (`http://127.0.0.1:PORT`, no `/v1`).
    pub fn base(&self) -> String {
        self.recorder.url()
    }

    /// A working directory for the client inside the temp root.
    pub fn work_dir(&self) -> PathBuf {
        let work = self.ctx.root().join("work");
        std::fs::create_dir_all(&work).unwrap();
        work
    }

    /// The requests the backend received.
    pub fn backend_posts(&self) -> Vec<Recorded> {
        self.fake
            .posts()
            .into_iter()
            .filter(|r| r.path == "/backend-api/codex/responses")
            .collect()
    }

    /// The results of the model's tool call the client sent back to the backend.
    pub fn tool_results(&self) -> Vec<String> {
        self.backend_posts()
            .iter()
            .flat_map(|p| model::tool_results(&p.json()))
            .collect()
    }

    /// Checks nothing failed quietly (a client may swallow an error, e.g. on its title request):
    /// bitrouter answered every request with a 2xx (or a `101` to a WebSocket handshake), the strict backend refused none, and each
    /// carried the stored account's token. Then records or checks the client's fixtures for
    /// `scenario`.
    pub fn finish(&self, client: &str, version: &str, scenario: &str, scrub: &Scrub) {
        let requests = self.recorder.sent();
        let failed: Vec<String> = requests
            .iter()
            .filter(|r| !(200..300).contains(&r.status) && r.status != 101)
            .map(|r| format!("{} {} -> {}", r.method, r.path, r.status))
            .collect();
        assert!(
            failed.is_empty(),
            "bitrouter refused some of {client}'s requests: {failed:?}\nbitrouter:\n{}",
            self.server.stderr()
        );
        let rejected: Vec<String> = self
            .fake
            .rejections()
            .iter()
            .map(|r| r.rejection.message())
            .collect();
        assert!(rejected.is_empty(), "the backend refused: {rejected:?}");
        let posts = self.backend_posts();
        assert!(!posts.is_empty(), "the backend saw no request");
        for post in &posts {
            assert_eq!(
                post.header("authorization").as_deref(),
                Some("Bearer tok-work")
            );
            assert_eq!(
                post.header("chatgpt-account-id").as_deref(),
                Some("acc-work")
            );
        }
        fixtures::check(client, version, scenario, &requests, scrub);
    }

    /// The scrub for this stage's machine details.
    pub fn scrub(&self) -> Scrub {
        Scrub::new(&self.ctx)
    }
}
