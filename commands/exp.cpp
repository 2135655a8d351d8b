// mlops exp create | ls | show | rm
#include "context.hpp"
#include "nouns.hpp"

#include "mlops/tracking/tracking.hpp"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace mlops::cli {

namespace {

nlohmann::json experiment_json(const tracking::Experiment& experiment)
{
  return {{"id", experiment.id},
          {"name", experiment.name},
          {"created_at", experiment.created_at},
          {"deleted_at", experiment.deleted_at ? nlohmann::json(*experiment.deleted_at) : nlohmann::json(nullptr)},
          {"runs", experiment.runs}};
}

struct ExpOptions
{
  std::string name;
  bool all = false;
};

} // namespace

void setup_exp(CLI::App& noun, Context& context)
{
  noun.require_subcommand(1);
  auto options = std::make_shared<ExpOptions>();

  auto* create = add_verb(noun, context, "create", "Create an experiment (existing: nothing to do)", [&context, options] {
    tracking::Tracking tracking(context.home(), context.database());
    auto [experiment, created] = tracking.create_experiment(options->name);
    auto document = experiment_json(experiment);
    document["created"] = created;
    context.out().result(document, created ? fmt::format("created experiment {}\n", experiment.name)
                                           : fmt::format("experiment {} already exists, nothing to do\n", experiment.name));
  });
  create->add_option("NAME", options->name, "Experiment name")->required();

  auto* ls = add_verb(noun, context, "ls", "List experiments", [&context, options] {
    tracking::Tracking tracking(context.home(), context.database());
    Table table({"NAME", "RUNS", "CREATED"});
    nlohmann::json list = nlohmann::json::array();
    for (const auto& experiment : tracking.experiments(options->all)) {
      list.push_back(experiment_json(experiment));
      table.add_row({experiment.name + (experiment.deleted_at ? " (removed)" : ""), std::to_string(experiment.runs), experiment.created_at});
    }
    context.out().result({{"experiments", list}}, table.empty() ? std::string("no experiments yet; `mlops exp create NAME` makes one\n")
                                                                : table.render(context.out().style().color));
  });
  ls->add_flag("--all", options->all, "Include removed experiments");

  auto* show = add_verb(noun, context, "show", "Show an experiment", [&context, options] {
    tracking::Tracking tracking(context.home(), context.database());
    auto experiment = tracking.experiment(options->name);
    Fields fields;
    fields.add("name", experiment.name).add("id", std::to_string(experiment.id)).add("runs", std::to_string(experiment.runs)).add("created", experiment.created_at);
    if (experiment.deleted_at) {
      fields.add("removed", *experiment.deleted_at);
    }
    context.out().result(experiment_json(experiment), fields);
  });
  show->add_option("NAME", options->name, "Experiment name")->required();

  auto* rm = add_verb(noun, context, "rm", "Remove an experiment (hidden; its runs are kept)", [&context, options] {
    tracking::Tracking tracking(context.home(), context.database());
    auto experiment = tracking.remove_experiment(options->name);
    context.out().result(experiment_json(experiment), fmt::format("removed experiment {}\n", experiment.name));
  });
  rm->add_option("NAME", options->name, "Experiment name")->required();
}

} // namespace mlops::cli
