/* What every unit test program shares: one CUnit suite per program. */
#ifndef SAEF_TEST_UNIT_H
#define SAEF_TEST_UNIT_H

#include <CUnit/Basic.h>

/* {"test_name", test_name}: a CU_TestInfo row named after its function.
   (clang-format 14 would break the # inside braces over four lines.) */
/* clang-format off */
#define SAEF_TEST(f) {#f, f}
/* clang-format on */

/*
 * Runs the suite `name` of tests (ended by CU_TEST_INFO_NULL) between init
 * and clean (either may be NULL); with an argument, only the tests whose
 * name contains it. 0 when everything passed, 1 when anything failed
 * (a failed init included), 2 when CUnit could not start.
 */
int saef_unit_run(const char *name, const CU_TestInfo *tests, CU_InitializeFunc init,
                  CU_CleanupFunc clean, int argc, char **argv);

/* saef_unit_run with a scratch directory: made from template (as for
   mkdtemp) before the tests, removed with all it holds after them. */
int saef_unit_run_in(char *template, const char *name, const CU_TestInfo *tests, int argc,
                     char **argv);

/* The same for a suite's own init and clean: 0 on success. */
int saef_unit_mkdir(char *template);
int saef_unit_rmdir(const char *dir);

#endif
