#pragma once
// The setup function of every noun. Each declares its verbs and options on the subcommand that
// main.cpp created for it, and runs them through Context; nothing outside commands/ sees CLI11.

#include <functional>

namespace CLI {
class App;
}

namespace mlops::cli {

class Context;

using NounSetup = void (*)(CLI::App& noun, Context& context);

void setup_init(CLI::App& noun, Context& context);
void setup_hash(CLI::App& noun, Context& context);
void setup_artifact(CLI::App& noun, Context& context);
void setup_data(CLI::App& noun, Context& context);
void setup_exp(CLI::App& noun, Context& context);
void setup_run(CLI::App& noun, Context& context);
void setup_model(CLI::App& noun, Context& context);
void setup_db(CLI::App& noun, Context& context);
void setup_serve(CLI::App& noun, Context& context);
void setup_deploy(CLI::App& noun, Context& context);
void setup_version(CLI::App& noun, Context& context);
void setup_completion(CLI::App& noun, Context& context);
void setup_manpage(CLI::App& noun, Context& context);


// A verb of `noun` that runs `run` (through on_run).
CLI::App* add_verb(CLI::App& noun, Context& context, const char* name, const char* summary, std::function<void()> run);

// Makes `app` run `handler` when it is the command the user chose (after global options apply).
// Only a command that `takes_command` (run exec) accepts words after `--`: Context::trailing_args.
void on_run(CLI::App& app, Context& context, std::function<void()> handler, bool takes_command = false);

} // namespace mlops::cli
