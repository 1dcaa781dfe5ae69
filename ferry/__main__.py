from ferry.cli.main import main

main()
