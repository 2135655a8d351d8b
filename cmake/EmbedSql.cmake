# Embeds schemas/sql/NNNN_name.sql into the binary as a table of migrations, regenerated whenever
# a migration file is added or edited.
file(GLOB MLOPS_MIGRATION_FILES CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/schemas/sql/*.sql")
list(SORT MLOPS_MIGRATION_FILES)
set(MLOPS_EMBEDDED_MIGRATIONS "${PROJECT_BINARY_DIR}/generated/embedded_migrations.cpp")
add_custom_command(
  OUTPUT "${MLOPS_EMBEDDED_MIGRATIONS}"
  COMMAND "${CMAKE_COMMAND}" "-DOUTPUT=${MLOPS_EMBEDDED_MIGRATIONS}"
          "-DINPUTS=${MLOPS_MIGRATION_FILES}" -P "${PROJECT_SOURCE_DIR}/cmake/embed_sql_script.cmake"
  DEPENDS ${MLOPS_MIGRATION_FILES} "${PROJECT_SOURCE_DIR}/cmake/embed_sql_script.cmake"
  COMMENT "Embedding SQL migrations"
  VERBATIM)
