#include "serve_command.hpp"

int main(int argc, char **argv)
{
	return r3cli::runServe(argc, argv);
}
