from csctl.cli import main

main()
