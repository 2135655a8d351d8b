#include "mlops/core/command_tree.hpp"

#include <doctest/doctest.h>

using namespace mlops;

namespace {

CommandNode sample_tree()
{
  CommandNode root{"mlops", "control plane", "", {}, {{{"--home"}, "DIR", "home"}, {{"--json"}, "", "json"}}, {}};
  CommandNode db{"db", "database", "", {}, {}, {}};
  db.subcommands.push_back({"check", "check it", "", {}, {}, {}});
  root.subcommands.push_back(db);
  root.subcommands.push_back({"completion", "shells", "SHELL", {"bash", "zsh"}, {}, {}});
  return root;
}

} // namespace

TEST_CASE("mlops::bash_completion")
{
  auto script = bash_completion(sample_tree());
  CHECK(script.find("'db') printf '%s\\n' 'check'") != std::string::npos);
  CHECK(script.find("'completion') printf '%s\\n' 'bash zsh'") != std::string::npos);
  // Global options are offered under every command, and --home takes a value there too.
  CHECK(script.find("'db check') printf '%s\\n' '--home --json'") != std::string::npos);
  CHECK(script.find("complete -o default -F _mlops mlops") != std::string::npos);
}

TEST_CASE("mlops::fish_completion")
{
  auto script = fish_completion(sample_tree());
  CHECK(script.find("-n '__fish_seen_subcommand_from db; and not __fish_seen_subcommand_from "
                    "check' -a check -d 'check it'") != std::string::npos);
  CHECK(script.find("complete -c mlops -l home -r -F -d 'home'") != std::string::npos);
}

TEST_CASE("mlops::man_page")
{
  auto page = man_page(sample_tree(), "1.2.3");
  CHECK(page.rfind(".TH MLOPS 1", 0) == 0);
  CHECK(page.find("mlops 1.2.3") != std::string::npos);
  CHECK(page.find(".B mlops db check") != std::string::npos);
  CHECK(page.find("\\-\\-home") != std::string::npos);  // Hyphens escaped for roff.
  CHECK(page.find(".SH EXIT STATUS") != std::string::npos);
}
