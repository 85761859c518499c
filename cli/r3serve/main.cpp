#include "serve_command.hpp"

int main(int argc, char **argv)
{
	return r3serve::runServe(argc, argv);
}
