#include "commands.hpp"

int main(int argc, char **argv)
{
	return r3ctl::run(argc, argv);
}
